// S3 unavailable for a few seconds while a job trains: a real coordinator and two workers
// read their shards from and write their checkpoints to a private Swift whose proxy the test
// stops mid-run and starts again. The workers retry with backoff and say so in their logs;
// the job completes from the same run (no automatic restart), its checkpoints all whole.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ObjectStore } from '@tensorfleet/data';
import { startSwift, testServices, type RunningSwift } from '@tensorfleet/infra';
import { listCheckpoints } from '@tensorfleet/training';
import { followJob, LocalCluster, serviceEnv } from '@tensorfleet/cli';
import { uniqueBucket } from '../support/test-cluster';
import { runUntilStep, smallJobSpec, writeSmallDataset } from '../support/small-job';

describe('S3 outage mid-run', { timeout: 15 * 60_000 }, () => {
  let swift: RunningSwift;
  let cluster: LocalCluster;
  const bucket = uniqueBucket('s3-outage');

  before(async () => {
    const { redisUrl } = await testServices();
    swift = await startSwift({ label: 's3-outage-e2e' });
    const keyPrefix = `tf-s3-outage-${process.pid}`;
    Object.assign(process.env, serviceEnv(redisUrl, swift.config, keyPrefix));
    cluster = await LocalCluster.start({ workers: 2, prefix: keyPrefix, workerEnv: { FLEET_COLLECTIVE_TIMEOUT_MS: '60000', FLEET_S3_RETRY_BUDGET_MS: '60000' } });
    // Shards small enough that the loader keeps reading through the run.
    await writeSmallDataset(swift.config, bucket, { samplesPerShard: 8, seed: 4 });
  });

  after(async () => {
    await swift?.startProxy().catch(() => undefined);
    await cluster?.stop();
    await swift?.stop();
  });

  it('a job trains through a few seconds of S3 outage: retries logged, no restart, checkpoints whole', async (t) => {
    const { id } = await cluster.client.submitJob(smallJobSpec(bucket, { name: 'through-an-s3-outage', checkpoint: { intervalSteps: 2, keep: 50 }, seed: 12 }));
    await runUntilStep(cluster, id, 4, { timeoutMs: 5 * 60_000 });

    await swift.stopProxy();
    const stoppedAt = Number((await cluster.client.getJob(id)).step ?? 0);
    await new Promise((r) => setTimeout(r, 6000));
    await swift.startProxy();

    const done = await followJob(cluster.client, id, undefined, { timeoutMs: 5 * 60_000, intervalMs: 250 });
    assert.equal(done.state, 'completed', `the job ended ${done.state}: ${done.error ?? ''} (logs: ${cluster.logDir})`);
    assert.equal(Number(done.step), 40);
    assert.deepEqual((done as { restarts?: unknown[] }).restarts ?? [], [], 'the outage was within the retry budget: no restart');
    assert.ok(stoppedAt < 40, `the outage began at step ${stoppedAt}, before the end`);

    const logs = cluster.workers.map((w) => readFileSync(w.logFile, 'utf8')).join('\n');
    const retries = logs.split('\n').filter((l) => /\[s3\] .* failed \(.*\), attempt \d+; retrying in \d+ ms/.test(l));
    assert.ok(retries.length > 0, `no worker logged an S3 retry (logs: ${cluster.logDir})`);
    t.diagnostic(`outage from step ${stoppedAt}; ${retries.length} retry lines, e.g. ${retries[0].trim()}`);
    assert.ok(!/S3_UNREACHABLE|still failing after/.test(logs), 'no operation ran out of its budget');

    // Every checkpoint the run committed reads as whole (the catalogue checks every part's size).
    const steps = (await listCheckpoints(new ObjectStore(swift.config), bucket, id)).map((m) => m.step);
    assert.deepEqual(steps, Array.from({ length: 20 }, (_, i) => 2 * (i + 1)), 'a checkpoint every 2 steps, none missing or half written');
  });
});
