// A real job through the coordinator and two worker processes with both services behind TLS:
// Redis speaks only TLS (the plain port is off) and knows only an ACL user confined to the
// cluster's key prefix (the default user is off), S3 is Swift serving https with a private CA.
// Every process gets what a user would set: REDIS_URL=rediss://USER:PASSWORD@…,
// REDIS_TLS_CA_FILE, S3_ENDPOINT=https://…, S3_CA_FILE. The job trains, checkpoints to S3 from
// the upload thread, logs to its Redis stream, and the ACL log shows nothing was denied.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { ControlPlane, openRedis, waitForRedis } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { startRedis, startSwift, tlsCertificates, type RunningRedis, type RunningSwift, type TestCertificates } from '@tensorfleet/infra';
import { LocalCluster, followJob } from '@tensorfleet/cli';
import type { Redis } from 'ioredis';
import { uniqueBucket } from '../support/test-cluster';

describe('a job with Redis over rediss:// (ACL user) and S3 over https', { timeout: 8 * 60_000 }, () => {
  let certs: TestCertificates;
  let redisServer: RunningRedis;
  let swift: RunningSwift;
  let cluster: LocalCluster | undefined;
  let redis: Redis;
  const prefix = `tf-secure-${process.pid}`;
  const password = randomBytes(18).toString('hex');
  const bucket = uniqueBucket('secure');
  let redisUrl = '';

  before(async () => {
    certs = await tlsCertificates();
    const serverTls = { ...certs.certs.server, caFile: certs.caFile };
    [redisServer, swift] = await Promise.all([
      startRedis({ label: 'secure-e2e', tls: serverTls, acl: ['user default off', `user fleet on >${password} ~${prefix}* &* +@all`] }),
      startSwift({ label: 'secure-e2e', tls: serverTls }),
    ]);
    redisUrl = redisServer.url.replace('rediss://', `rediss://fleet:${password}@`);
    // As a user's shell would have them; LocalCluster and every process it starts read these.
    delete process.env.TF_S3;
    Object.assign(process.env, {
      REDIS_URL: redisUrl,
      REDIS_TLS_CA_FILE: certs.caFile,
      S3_ENDPOINT: swift.url,
      S3_ACCESS_KEY: swift.config.accessKey,
      S3_SECRET_KEY: swift.config.secretKey,
      S3_REGION: swift.config.region,
      S3_CA_FILE: certs.caFile,
    });
    redis = openRedis(redisUrl, { caFile: certs.caFile }, 'test', () => undefined);
    await waitForRedis(redis, redisUrl);
    cluster = await LocalCluster.start({ workers: 2, prefix });
    await writeSyntheticDataset(new ObjectStore(cluster.s3), { bucket, prefix: 'synthetic', numClasses: 4, imageSize: 32, trainPerClass: 16, valPerClass: 4, samplesPerShard: 32, seed: 3 });
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
    if (swift) await new ObjectStore(swift.config).removeAll(bucket).catch(() => undefined);
    await Promise.all([redisServer?.stop(), swift?.stop()]);
    if (certs) rmSync(certs.dir, { recursive: true, force: true });
  });

  it('trains, checkpoints and logs, and the ACL denied nothing', async () => {
    assert.ok(cluster);
    assert.equal(cluster.s3.useSSL, true);
    assert.equal(cluster.s3.caFile, certs.caFile);
    const { id } = await cluster.client.submitJob({
      name: 'secure', model: { name: 'resnet8' }, dataset: { bucket, prefix: 'synthetic' }, parallelism: { dataParallel: 2 },
      batchSize: 8, steps: 4, optimizer: { type: 'sgd', lr: 0.05 }, augmentation: 'small',
      checkpoint: { intervalSteps: 2, keep: 2 }, evaluation: { atEnd: false }, seed: 1,
    });
    const job = await followJob(cluster.client, id, undefined, { timeoutMs: 5 * 60_000 });
    assert.equal(job.state, 'completed', `job ended ${job.state}: ${job.error ?? ''} (logs: ${cluster.logDir})`);
    assert.equal(job.step, 4);

    // The checkpoints went up over https (rank 0's manifest last) and the catalogue read them back.
    const store = new ObjectStore(cluster.s3);
    const manifests = (await store.list(bucket, `checkpoints/${id}/`)).filter((o) => o.key.endsWith('manifest.json')).map((o) => o.key);
    assert.deepEqual(manifests.map((k) => k.split('/')[2]).sort(), ['2', '4'], `manifests: ${manifests.join(', ')}`);
    const catalogue = await (await fetch(`${cluster.client.baseUrl}/jobs/${id}/checkpoints`)).json() as { step: number }[];
    assert.deepEqual(catalogue.map((c) => c.step), [2, 4]);

    // The workers' log lines reached the job's Redis stream; both heartbeat threads kept them alive.
    const logs = await cluster.client.logs(id);
    assert.deepEqual([...new Set(logs.lines.map((l) => l.rank))].sort(), [0, 1]);
    const workers = await new ControlPlane(redis, { prefix }).listWorkers();
    assert.equal(workers.filter((w) => w.alive).length, 2);

    // Every key and channel any process touched was under the prefix: the server logged no denial.
    const denied = await redis.call('ACL', 'LOG') as unknown[];
    assert.deepEqual(denied, [], `ACL LOG: ${JSON.stringify(denied)}`);
    // No process ever fell back to a plain connection or met a certificate it did not trust.
    for (const p of [cluster.coordinator, ...cluster.workers]) {
      const text = readFileSync(p.logFile, 'utf8');
      assert.doesNotMatch(text, /Redis connection .* (lost|wants|refused|not trusted)|S3_TLS|S3_UNREACHABLE/, `${p.name}: ${p.logFile}`);
    }
  });
});
