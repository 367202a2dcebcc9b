// Faults and resume with real processes: a worker killed mid-run restarts the job on the
// remaining workers within its restart budget, and fails it (naming the lost worker) without
// hanging its peer once the budget is spent, and a job paused and resumed from its checkpoint
// ends bit-identical to the same job run without interruption.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { ControlPlane } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { followJob, type LocalCluster } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';

describe('faults and resume', { timeout: 15 * 60_000 }, () => {
  let cluster: LocalCluster;
  let redis: Redis;
  let control: ControlPlane;
  const bucket = uniqueBucket('faults');
  const prefix = 'datasets/synthetic';

  const spec = (over: Record<string, unknown> = {}) => ({
    model: { name: 'resnet8' },
    dataset: { bucket, prefix },
    parallelism: { dataParallel: 2 },
    batchSize: 16,
    steps: 24,
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
    lrSchedule: { type: 'cosine', warmupSteps: 4, scaleWithWorldSize: false },
    augmentation: 'small',
    checkpoint: { intervalSteps: 1000, keep: 2 },
    evaluation: { atEnd: false },
    seed: 5,
    ...over,
  });

  const completedHash = async (id: string) => {
    const done = (await control.readEvents(id, '-', 1000)).filter((e) => e.type === 'rank-completed');
    assert.equal(done.length, 2, `expected two rank-completed events for ${id}`);
    assert.equal(done[0].weightsHash, done[1].weightsHash);
    return String(done[0].weightsHash);
  };

  before(async () => {
    cluster = await startTestCluster({ name: 'faults', workers: 3, workerEnv: { FLEET_COLLECTIVE_TIMEOUT_MS: '8000', FLEET_HEARTBEAT_MS: '500' } });
    await writeSyntheticDataset(new ObjectStore(cluster.s3), { bucket, prefix, numClasses: 4, imageSize: 32, trainPerClass: 64, valPerClass: 8, samplesPerShard: 32, seed: 9 });
    redis = new Redis(cluster.redisUrl);
    control = new ControlPlane(redis, { prefix: cluster.prefix });
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('a job paused and resumed ends with the same weights as an uninterrupted run', async () => {
    const straight = await cluster.client.submitJob(spec({ name: 'straight' }));
    const s = await followJob(cluster.client, straight.id, undefined, { timeoutMs: 5 * 60_000 });
    assert.equal(s.state, 'completed', `uninterrupted job ended ${s.state}: ${s.error ?? ''} (logs: ${cluster.logDir})`);
    const expected = await completedHash(straight.id);

    const paused = await cluster.client.submitJob(spec({ name: 'paused' }));
    await followJob(cluster.client, paused.id, undefined, { until: (j) => (j.step ?? 0) >= 6, intervalMs: 100 });
    await cluster.client.jobAction(paused.id, 'pause');
    const p = await followJob(cluster.client, paused.id, undefined, { timeoutMs: 2 * 60_000 });
    assert.equal(p.state, 'paused', `pause ended ${p.state}: ${p.error ?? ''}`);
    assert.ok(p.lastCheckpoint, 'a paused job has a checkpoint to resume from');
    const pausedAt = Number(p.step);
    assert.ok(pausedAt >= 6 && pausedAt < 24, `paused at step ${pausedAt}`);

    await cluster.client.jobAction(paused.id, 'resume');
    const r = await followJob(cluster.client, paused.id, (j) => j, { timeoutMs: 5 * 60_000 });
    assert.equal(r.state, 'completed', `resumed job ended ${r.state}: ${r.error ?? ''} (logs: ${cluster.logDir})`);
    assert.equal(Number(r.step), 24);
    assert.equal(await completedHash(paused.id), expected, `pause at step ${pausedAt} + resume diverged from the uninterrupted run`);
  });

  /** Runs `id` to step 3 (and a checkpoint if asked) and SIGKILLs the worker holding rank 1. */
  const killRank1 = async (id: string, checkpointed = false) => {
    const running = await followJob(cluster.client, id, undefined, { until: (j) => (j.step ?? 0) >= 3 && (!checkpointed || !!j.lastCheckpoint), intervalMs: 100, timeoutMs: 2 * 60_000 });
    assert.equal(running.state, 'running');
    const workers = await cluster.client.listWorkers();
    const victim = workers.find((w) => w.jobId === id && Number(w.rank) === 1);
    assert.ok(victim, 'no worker holds rank 1');
    const proc = cluster.workers.find((p) => victim.id.includes(`-${p.name}-`));
    assert.ok(proc, `no process for ${victim.id}`);
    proc.kill('SIGKILL');
    return { victim, workers, killedAt: Date.now() };
  };

  it('a worker killed mid-run restarts the job from its checkpoint on the remaining workers, without a resume call', async () => {
    const { id } = await cluster.client.submitJob(spec({ name: 'restarted', steps: 40, checkpoint: { intervalSteps: 2, keep: 2 }, recovery: { maxRestarts: 2 } }));
    const { victim } = await killRank1(id, true);
    const done = await followJob(cluster.client, id, undefined, { timeoutMs: 5 * 60_000, intervalMs: 250 });
    assert.equal(done.state, 'completed', `the job ended ${done.state}: ${done.error ?? ''} (logs: ${cluster.logDir})`);
    const restarts = (done as { restarts?: { worker: string; cause: string; fromStep: number; lostSteps: number }[] }).restarts ?? [];
    assert.equal(restarts.length, 1, `expected one restart, got ${JSON.stringify(restarts)}`);
    assert.equal(restarts[0].worker, victim.id);
    assert.equal(restarts[0].cause, 'stopped heartbeating');
    assert.ok(restarts[0].fromStep >= 2, `the restart went back to step ${restarts[0].fromStep}, not to a checkpoint`);
    assert.ok(!(done.members ?? []).some((m) => m.workerId === victim.id), 'the lost worker is a member of the restarted run');
    const events = await control.readEvents(id, '-', 1000);
    assert.ok(events.some((e) => e.type === 'job-state' && e.state === 'queued' && /automatic restart 1 of 2/.test(String(e.message))), 'no restart event');
    await waitFor(async () => (await cluster.client.listWorkers()).find((w) => w.id === victim.id)?.alive === false, 15_000, 'the killed worker is not listed as lost');
    await cluster.client.forgetWorker(victim.id);
  });

  it('a worker killed mid-run with no restarts left fails the job, names it, and never hangs its peer', async () => {
    const { id } = await cluster.client.submitJob(spec({ name: 'doomed', steps: 100000, recovery: { maxRestarts: 0 } }));
    const { victim, workers, killedAt } = await killRank1(id);

    const failed = await followJob(cluster.client, id, undefined, { timeoutMs: 60_000, intervalMs: 200 });
    assert.equal(failed.state, 'failed');
    assert.match(String(failed.error), new RegExp(`${victim.id}|rank 1`), `the error does not name the lost worker: ${failed.error}`);
    assert.match(String(failed.error), /restart budget spent \(0 of 0/, `the error does not give the budget: ${failed.error}`);
    // The survivor leaves its collective within the deadline and is free for new work.
    const survivor = workers.find((w) => w.jobId === id && Number(w.rank) === 0)!;
    await waitFor(async () => {
      const w = (await cluster.client.listWorkers()).find((x) => x.id === survivor.id);
      return !!w && w.alive && w.state === 'idle';
    }, 30_000, `worker ${survivor.id} did not return to idle`);
    assert.ok(Date.now() - killedAt < 45_000, 'detecting the lost worker took too long');

    // The dead worker stays listed as lost until forgotten; a live one that the registry
    // loses (a flushed Redis, or a sweep after a long stall) registers again by itself.
    await waitFor(async () => (await cluster.client.listWorkers()).find((w) => w.id === victim.id)?.alive === false,
      10_000, 'the killed worker is not listed as lost once its heartbeat expired');
    await cluster.client.forgetWorker(victim.id);
    assert.ok(!(await cluster.client.listWorkers()).some((w) => w.id === victim.id), 'the lost worker was not forgotten');
    await redis.multi().srem(control.keys.workers(), survivor.id).del(control.keys.worker(survivor.id)).exec();
    await waitFor(async () => {
      const w = (await cluster.client.listWorkers()).find((x) => x.id === survivor.id);
      return !!w && w.alive && w.state === 'idle';
    }, 15_000, `worker ${survivor.id} did not register again after the registry lost it`);
  });
});

async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(message);
}
