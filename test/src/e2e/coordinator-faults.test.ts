// The coordinator under faults, with real processes: a coordinator SIGKILLed mid-run while the
// workers train on without it, a new one on the same Redis that shows the same job and takes
// over its scheduling and recovery (a worker killed after the takeover is recovered by it);
// then two coordinators at once on one Redis, jobs submitted through both, none scheduled twice.
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { ControlPlane, type JobEvent } from '@tensorfleet/control';
import { followJob, type CoordinatorClient, type LocalCluster } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';
import { processOfRank, runUntilStep, smallJobSpec, waitFor, writeSmallDataset } from '../support/small-job';

// Short takeover for the test: a dead coordinator's BullMQ locks lapse after 2 s.
const COORDINATOR_ENV = { FLEET_LOCK_DURATION_MS: '2000', FLEET_FOLLOW_POLL_MS: '200' };
const QUEUE = 'tensorfleet-jobs';

describe('coordinator faults', { timeout: 12 * 60_000 }, () => {
  let cluster: LocalCluster;
  let redis: Redis;
  let control: ControlPlane;
  const bucket = uniqueBucket('coordinator-faults');

  /** The BullMQ lock of the job's current queueing: held by whichever coordinator follows it. */
  const lockHeld = async (id: string) => {
    const j = await control.getJob(id);
    return (await redis.exists(`${cluster.prefix}:${QUEUE}:${id}-a${j?.attempt ?? 1}:lock`)) === 1;
  };

  before(async () => {
    cluster = await startTestCluster({
      name: 'coordinator-faults', workers: 3, coordinatorEnv: COORDINATOR_ENV,
      workerEnv: { FLEET_COLLECTIVE_TIMEOUT_MS: '8000', FLEET_HEARTBEAT_MS: '500' },
    });
    await writeSmallDataset(cluster.s3, bucket);
    redis = new Redis(cluster.redisUrl);
    control = new ControlPlane(redis, { prefix: cluster.prefix });
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('a coordinator killed mid-run: training goes on, a new one shows the same job, takes it over and recovers a lost worker', async (t) => {
    const { id } = await cluster.client.submitJob(smallJobSpec(bucket, { name: 'takeover', steps: 45, checkpoint: { intervalSteps: 2, keep: 5 }, recovery: { maxRestarts: 2 } }));
    await runUntilStep(cluster, id, 3);
    const before = await cluster.client.getJob(id);
    const old = cluster.coordinator;
    old.kill('SIGKILL');
    await old.exited;
    const killedAt = Date.now();

    // No coordinator runs: the workers keep training and recording their steps in Redis.
    const stepAtKill = (await control.getJob(id))!.step ?? 0;
    await waitFor(async () => ((await control.getJob(id))!.step ?? 0) >= stepAtKill + 3, 90_000, `no step after ${stepAtKill} without a coordinator (logs: ${cluster.logDir})`);
    assert.ok(cluster.coordinators.every((c) => !c.running), 'a coordinator was running');
    await waitFor(async () => !(await lockHeld(id)), 10_000, 'the dead coordinator\'s lock did not lapse');
    const trainedAlone = ((await control.getJob(id))!.step ?? 0) - stepAtKill;

    // A new coordinator on the same Redis (and port): the same job, as the API shows it.
    const port = Number(new URL(cluster.client.baseUrl).port);
    const { proc } = await cluster.addCoordinator({ port });
    const seen = await cluster.client.getJob(id);
    assert.equal(seen.state, 'running');
    for (const k of ['runId', 'membershipEpoch', 'members', 'spec', 'attempt', 'createdAt', 'startedAt'] as const) {
      assert.deepEqual(seen[k], before[k], `${k} differs after the restart`);
    }
    assert.ok((seen.step ?? 0) >= stepAtKill + 3);
    await waitFor(() => lockHeld(id), 20_000, `the new coordinator did not take the job over (log: ${proc.logFile})`);
    t.diagnostic(`${trainedAlone} steps trained with no coordinator; taken over ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`);

    // A worker lost after the takeover: the new coordinator restarts the run on the spare worker.
    assert.ok(((await control.getJob(id))!.step ?? 0) < 40, 'the job is nearly done before the worker kill: make it longer');
    const { workerId: victim, proc: victimProc } = await processOfRank(cluster, id, 1);
    victimProc.kill('SIGKILL');
    const done = await followJob(cluster.client, id, undefined, { timeoutMs: 4 * 60_000, intervalMs: 250 });
    assert.equal(done.state, 'completed', `the job ended ${done.state}: ${done.error ?? ''} (logs: ${cluster.logDir})`);
    assert.equal(done.step, 45);
    assert.deepEqual(done.restarts?.map((r) => [r.worker, r.cause]), [[victim, 'stopped heartbeating']]);
    assert.ok(!(done.members ?? []).some((m) => m.workerId === victim), 'the lost worker is a member of the restarted run');
    assert.equal(done.membershipEpoch, before.membershipEpoch + 1);
    assert.match(readFileSync(proc.logFile, 'utf8'), new RegExp(`job ${id}: .*automatic restart 1 of 2`), 'the new coordinator did not log the restart');
    assert.doesNotMatch(readFileSync(old.logFile, 'utf8'), /automatic restart/, 'the killed coordinator restarted something');
    await waitFor(async () => (await cluster.client.listWorkers()).find((w) => w.id === victim)?.alive === false, 15_000, 'the killed worker is not listed as lost');
    await cluster.client.forgetWorker(victim);
  });

  it('two coordinators at once on one Redis: jobs submitted through both, each started once, no worker in two jobs at once', async (t) => {
    // Both with a concurrency of 2, so that six jobs are spread over both of them.
    cluster.addWorker();
    // (not waitForWorkers: it fails on the worker killed above)
    await waitFor(async () => (await cluster.client.listWorkers()).filter((w) => w.alive && w.state === 'idle').length >= 3, 60_000, '3 idle workers');
    const port = Number(new URL(cluster.client.baseUrl).port);
    await cluster.coordinator.stop();
    const a = await cluster.addCoordinator({ port, env: { FLEET_CONCURRENCY: '2' } });
    const b = await cluster.addCoordinator({ env: { FLEET_CONCURRENCY: '2' } });
    const clients: CoordinatorClient[] = [a.client, b.client];
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const dp = i % 2 === 0 ? 2 : 1;
      ids.push((await clients[i % 2].submitJob(smallJobSpec(bucket, { name: `pair-${i}`, parallelism: { dataParallel: dp }, batchSize: 32 / dp, steps: 6, checkpoint: { intervalSteps: 100, keep: 1 } }))).id);
    }
    const ended = await Promise.all(ids.map((id, i) => followJob(clients[(i + 1) % 2], id, undefined, { timeoutMs: 6 * 60_000, intervalMs: 250 })));
    for (const j of ended) assert.equal(j.state, 'completed', `job ${j.id} ended ${j.state}: ${j.error ?? ''} (logs: ${cluster.logDir})`);

    // Each job: one membership epoch, one start, one run whose every rank started once.
    const intervals: { worker: string; job: string; from: number; to: number }[] = [];
    for (const j of ended) {
      const events = await control.readEvents(j.id, '-', 10_000);
      assert.equal(j.membershipEpoch, 1, `job ${j.id} had ${j.membershipEpoch} membership epochs`);
      assert.equal(events.filter((e) => e.type === 'job-state' && e.state === 'running').length, 1, `job ${j.id} was started more than once`);
      const started = events.filter((e) => e.type === 'rank-started');
      assert.deepEqual([...new Set(started.map((e) => e.runId))], [j.runId], `job ${j.id}: runs ${JSON.stringify(started.map((e) => e.runId))}`);
      assert.deepEqual(started.map((e) => e.rank).sort(), (j.members ?? []).map((m) => m.rank).sort(), `job ${j.id}: a rank started twice or not at all`);
      for (const s of started) {
        const end = events.find((e: JobEvent) => e.type === 'rank-completed' && e.rank === s.rank && e.runId === s.runId);
        assert.ok(end, `job ${j.id} rank ${s.rank} has no end`);
        intervals.push({ worker: String(s.workerId), job: j.id, from: s.ts ?? 0, to: end.ts ?? 0 });
      }
    }
    // No worker trained two jobs at once.
    const byWorker = new Map<string, typeof intervals>();
    for (const x of intervals) byWorker.set(x.worker, [...(byWorker.get(x.worker) ?? []), x]);
    for (const [w, xs] of byWorker) {
      xs.sort((x, y) => x.from - y.from);
      for (let i = 1; i < xs.length; i++) assert.ok(xs[i].from >= xs[i - 1].to, `worker ${w} ran ${xs[i - 1].job} and ${xs[i].job} at once`);
    }
    // Both coordinators scheduled some of them.
    const ran = [a.proc, b.proc].map((p) => (readFileSync(p.logFile, 'utf8').match(/: running on /g) ?? []).length);
    t.diagnostic(`runs started by each coordinator: ${ran.join(' / ')}; ${byWorker.size} workers`);
    assert.ok(ran.every((n) => n > 0), `one coordinator scheduled nothing: ${ran.join(' / ')}`);
    assert.equal(ran[0] + ran[1], 6);
  });
});
