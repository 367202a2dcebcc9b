// CURVE on the data plane through the whole chain: two workers on different "hosts"
// (FLEET_HOST_ID, so they talk tcp, where CURVE is on by default) train a job with the keys
// the coordinator put in their assignments; a process without CURVE that dials a worker's
// collective port is refused, and the worker logs it with its count.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import type { LocalCluster } from '@tensorfleet/cli';
import { until } from '../support/poll';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';

describe('CURVE between workers, keys from the coordinator', { timeout: 8 * 60_000 }, () => {
  let cluster: LocalCluster;
  const bucket = uniqueBucket('curve');

  before(async () => {
    cluster = await startTestCluster({ name: 'curve', workers: 0, workerEnv: { FLEET_COLLECTIVE_TIMEOUT_MS: '20000' } });
    cluster.addWorker({ FLEET_HOST_ID: `curve-a-${process.pid}` });
    cluster.addWorker({ FLEET_HOST_ID: `curve-b-${process.pid}` });
    await cluster.waitForWorkers(2);
    await writeSyntheticDataset(new ObjectStore(cluster.s3), { bucket, prefix: 'd', numClasses: 2, imageSize: 16, trainPerClass: 32, valPerClass: 8, samplesPerShard: 32, seed: 5 });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('a data-parallel job over tcp with CURVE completes; a plain client is refused and logged', async () => {
    const workers = await cluster.client.listWorkers();
    for (const w of workers) assert.equal((w.address as { curve?: { mode: string } }).curve?.mode, 'tcp', `worker ${w.id} demands CURVE on tcp`);
    const { id } = await cluster.client.submitJob({
      name: 'curve', model: { name: 'resnet8' }, dataset: { bucket, prefix: 'd' }, parallelism: { dataParallel: 2 },
      batchSize: 8, steps: 6, optimizer: { type: 'sgd', lr: 0.05 }, augmentation: 'none', checkpoint: { intervalSteps: 0, keep: 1 }, seed: 1,
    });
    const done = await until('the job to end', async () => {
      const j = await cluster.client.getJob(id);
      return ['completed', 'failed', 'cancelled'].includes(j.state) ? j : null;
    }, 5 * 60_000);
    assert.equal(done.state, 'completed', done.error);
    assert.equal(done.step, 6);

    // a client of no run at a worker's collective port, offering ZeroMQ's NULL mechanism (no CURVE):
    // the 64-byte ZMTP 3.0 greeting, signature, version 3.0, mechanism "NULL", as-server 0
    const greeting = Buffer.alloc(64);
    greeting[0] = 0xff;
    greeting[9] = 0x7f;
    greeting[10] = 3;
    greeting.write('NULL', 12, 'ascii');
    const url = new URL(workers[0].address.tcp.replace('tcp://', 'http://'));
    const sock = connect(Number(url.port), url.hostname, () => sock.write(greeting));
    sock.on('error', () => undefined);
    const log = cluster.workers.map((w) => w.logFile);
    const line = await until('the refusal in a worker log', async () =>
      log.map((f) => readFileSync(f, 'utf8')).join('\n').split('\n').find((l) => l.includes('collective: refused a connection')), 20_000);
    sock.destroy();
    assert.match(line, /\(handshake: .*\); refused so far: unknown-key 0, stale-key 0, handshake [1-9]/);
  });
});
