// Redis restarted mid-run, as a deployment with an append-only file sees it: a real
// coordinator and two workers on a private Redis (AOF, appendfsync always) that the test
// kills with SIGKILL while a job trains, and starts again on the same port and folder. The
// job completes without an automatic restart; its record, its events and its checkpoint
// records from before the crash are all still there, and the API answers again.
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { ControlPlane, logRedisConnection, type JobEvent } from '@tensorfleet/control';
import { startRedis, testServices, type RunningRedis } from '@tensorfleet/infra';
import { followJob, LocalCluster, serviceEnv } from '@tensorfleet/cli';
import { uniqueBucket } from '../support/test-cluster';
import { runUntilStep, smallJobSpec, writeSmallDataset } from '../support/small-job';

describe('Redis restarted mid-run (AOF)', { timeout: 15 * 60_000 }, () => {
  let redisServer: RunningRedis;
  let cluster: LocalCluster;
  let redis: Redis;
  let control: ControlPlane;
  const bucket = uniqueBucket('redis-restart');

  before(async () => {
    const { s3 } = await testServices();
    redisServer = await startRedis({ label: 'redis-restart', appendfsync: 'always' });
    const keyPrefix = `tf-redis-restart-${process.pid}`;
    Object.assign(process.env, serviceEnv(redisServer.url, s3, keyPrefix));
    cluster = await LocalCluster.start({ workers: 2, prefix: keyPrefix, workerEnv: { FLEET_COLLECTIVE_TIMEOUT_MS: '30000' } });
    await writeSmallDataset(s3, bucket, { seed: 3 });
    redis = logRedisConnection(new Redis(redisServer.url, { maxRetriesPerRequest: null }), 'test', () => undefined);
    control = new ControlPlane(redis, { prefix: keyPrefix });
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
    await redisServer?.stop();
  });

  it('a job survives a Redis crash and restart: nothing written before it is lost, no worker is counted lost', async (t) => {
    const { id } = await cluster.client.submitJob(smallJobSpec(bucket, { name: 'through-a-redis-restart' }));
    await runUntilStep(cluster, id, 6, { timeoutMs: 5 * 60_000 });

    const recordBefore = await control.getJob(id);
    const eventsBefore = await control.readEvents(id, '-', 10_000);
    const checkpointsBefore = eventsBefore.filter((e) => e.type === 'checkpoint');
    assert.ok(checkpointsBefore.length >= 1, 'a checkpoint record exists before the restart');
    const workersBefore = (await cluster.client.listWorkers()).map((w) => w.id).sort();

    const t0 = Date.now();
    await redisServer.restart({ crash: true, downMs: 1000 });
    const downFor = Date.now() - t0;
    t.diagnostic(`redis.sh kill + 1000 ms + redis.sh start took ${downFor} ms (loaded machine: most of it is the scripts starting)`);

    // The coordinator's API answers again (it reads the job from Redis).
    const answered = await waitFor(async () => (await cluster.client.getJob(id).catch(() => null)) !== null, 30_000, 'the API did not answer after the restart');
    assert.ok(answered, 'API answered');

    const after = await control.getJob(id);
    assert.ok(after, 'the job record survived');
    assert.equal(after.id, recordBefore!.id);
    assert.deepEqual(after.spec, recordBefore!.spec, 'the job spec survived');
    assert.ok((after.step ?? 0) >= (recordBefore!.step ?? 0), 'the recorded step did not go back');
    const eventsAfter = await control.readEvents(id, '-', 10_000);
    const byId = new Map(eventsAfter.map((e) => [e.id, e]));
    for (const e of eventsBefore) assert.deepEqual(byId.get(e.id), e, `event ${e.id} (${e.type}) is gone or changed after the restart`);

    const done = await followJob(cluster.client, id, undefined, { timeoutMs: 5 * 60_000, intervalMs: 250 });
    assert.equal(done.state, 'completed', `the job ended ${done.state}: ${done.error ?? ''} (logs: ${cluster.logDir})`);
    assert.equal(Number(done.step), 40);
    // How long each process was without Redis, from its own log: the gap the heartbeat TTL has to cover.
    const gaps = [cluster.coordinator, ...cluster.workers].map((p) => {
      const m = [...readFileSync(p.logFile, 'utf8').matchAll(/Redis connection main back after (\d+\.\d) s/g)];
      assert.ok(m.length, `${p.name} did not log getting Redis back (${p.logFile})`);
      return Number(m[m.length - 1][1]);
    });
    const restarts = (done as { restarts?: { cause: string }[] }).restarts ?? [];
    t.diagnostic(`without Redis for ${gaps.join(' / ')} s (coordinator / workers); heartbeat TTL 6 s; automatic restarts: ${restarts.length}`);
    if (Math.max(...gaps) < 6) {
      assert.deepEqual(restarts, [], 'a gap shorter than the heartbeat TTL must not count as a lost worker');
    } else {
      // Longer than the TTL (a very loaded machine): the heartbeat keys expired, and the run came back through the automatic restart.
      assert.ok(restarts.length >= 1 && restarts.every((r) => r.cause === 'stopped heartbeating'), `gap over the TTL: expected automatic restarts for lost heartbeats, got ${JSON.stringify(restarts)}`);
    }

    const final: JobEvent[] = await control.readEvents(id, '-', 10_000);
    const finalIds = new Set(final.map((e) => e.id));
    for (const c of checkpointsBefore) assert.ok(finalIds.has(c.id), `checkpoint record ${c.checkpointKey} is gone`);
    assert.ok(final.filter((e) => e.type === 'checkpoint').length > checkpointsBefore.length, 'checkpoints were recorded after the restart too');
    assert.equal(final.filter((e) => e.type === 'rank-completed').length, 2, 'both ranks reported after the restart');
    const ids = final.map((e) => e.id!);
    assert.deepEqual([...ids].sort(compareStreamIds), ids, 'stream ids stay ordered across the restart');
    const views = await cluster.client.listWorkers();
    assert.deepEqual(views.map((w) => w.id).sort(), workersBefore, 'the same workers are registered');
    await waitFor(async () => (await cluster.client.listWorkers()).every((w) => w.alive && w.state === 'idle'), 30_000, 'the workers did not return to idle');

    // Each process said that it lost Redis and when it had it back.
    for (const proc of [cluster.coordinator, ...cluster.workers]) {
      const log = readFileSync(proc.logFile, 'utf8');
      assert.match(log, /Redis connection main lost \(.*\); reconnecting/, `${proc.name} did not log the lost connection (${proc.logFile})`);
      assert.match(log, /Redis connection main back after \d+\.\d s/, `${proc.name} did not log the reconnection (${proc.logFile})`);
    }
  });
});

function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  return am !== bm ? (am < bm ? -1 : 1) : as < bs ? -1 : as > bs ? 1 : 0;
}

async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, message: string): Promise<true> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(message);
}
