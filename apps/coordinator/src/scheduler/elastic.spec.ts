// Elastic membership: the pure rules (claim range, blacklist, growth) and the gang scheduler
// applying them against a real Redis: a lost worker's run goes on smaller, a free worker makes
// it grow at a checkpoint, a worker that keeps failing the job is left out.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ControlPlane, parseJobSpec, type JobSpec, type WorkerCommand } from '@tensorfleet/control';
import { startRedis, testId } from '@tensorfleet/infra';
import { blacklistOf, elasticClaim, shouldGrow } from './elastic';
import { GangScheduler } from './gang-scheduler';

type Assign = Extract<WorkerCommand, { type: 'assign' }>;

let url: string;
let stopRedis: () => Promise<void> = async () => undefined;
const conns: Redis[] = [];
const schedulers: GangScheduler[] = [];

before(async () => {
  const r = await startRedis({ label: 'elastic-spec' });
  url = r.url;
  stopRedis = () => r.stop();
});
after(async () => {
  for (const s of schedulers) s.close();
  for (const c of conns) c.disconnect();
  await stopRedis();
});

function elasticSpec(dataParallel: number, min: number, max: number): JobSpec {
  const r = parseJobSpec({
    model: { name: 'resnet8' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel }, batchSize: 6, steps: 50,
    optimizer: { type: 'sgd', lr: 0.1 }, recovery: { maxRestarts: 3, minDataParallel: min, maxDataParallel: max },
  });
  assert.ok(r.spec, JSON.stringify(r.errors));
  return r.spec;
}

const restart = (worker: string, at: number) => ({ at, cause: 'stopped heartbeating', worker, fromStep: 0, lostSteps: 0 });

test('claim range: the asked size for a first run, the minimum after a restart; not elastic: null', () => {
  const spec = elasticSpec(2, 1, 3);
  assert.deepEqual(elasticClaim({ spec }), { min: 2, max: 3 });
  assert.deepEqual(elasticClaim({ spec, lastCheckpoint: 'checkpoints/j/4' }), { min: 1, max: 3 });
  assert.deepEqual(elasticClaim({ spec, restarts: [restart('a', 0)] }), { min: 1, max: 3 });
  assert.equal(elasticClaim({ spec: elasticSpec(2, 2, 2) }), null);
});

test('blacklist: a worker behind blacklistAfter recent restarts is out; old failures expire', () => {
  const now = 1_000_000;
  const job = { restarts: [restart('a', now - 5000), restart('b', now - 4000), restart('a', now - 1000), restart('c', now - 900_000), restart('c', now - 800_000)] };
  assert.deepEqual(blacklistOf(job, now), ['a'], 'a failed twice recently; c twice but long ago');
  assert.deepEqual(blacklistOf(job, now, { blacklistAfter: 1 }).sort(), ['a', 'b']);
  assert.deepEqual(blacklistOf(job, now, { blacklistMs: 2000 }), []);
  assert.deepEqual(blacklistOf({}, now), []);
});

test('growth: below the maximum with a free worker outside the blacklist and nobody waiting', () => {
  const spec = elasticSpec(2, 1, 3);
  const members = [{ rank: 0, workerId: 'a', address: { hostId: 'h', tcp: 't', ipc: null } }];
  const now = 1_000_000;
  assert.equal(shouldGrow({ spec, members }, ['x', 'y', 'z'], false, now), 3, 'up to the maximum');
  assert.equal(shouldGrow({ spec, members }, ['x'], false, now), 2);
  assert.equal(shouldGrow({ spec, members }, [], false, now), null);
  assert.equal(shouldGrow({ spec, members }, ['x'], true, now), null, 'a queued job gets free workers first');
  assert.equal(shouldGrow({ spec, members, pauseRequested: now }, ['x'], false, now), null);
  assert.equal(shouldGrow({ spec, members, growRequested: now }, ['x'], false, now), null);
  assert.equal(shouldGrow({ spec, members, restarts: [restart('x', now - 10), restart('x', now - 5)] }, ['x'], false, now), null, 'x is blacklisted');
  const full = [0, 1, 2].map((rank) => ({ ...members[0], rank }));
  assert.equal(shouldGrow({ spec, members: full }, ['x'], false, now), null, 'at the maximum');
});

function setup() {
  const prefix = testId('elastic');
  const redis = new Redis(url);
  conns.push(redis);
  const control = new ControlPlane(redis, { prefix });
  const r = new Redis(url);
  conns.push(r);
  const gang = new GangScheduler(new ControlPlane(r, { prefix }), { claimBackoffMs: 20, claimMaxBackoffMs: 100, followPollMs: 30, staleBusyMs: 200, reserveAfterMs: 120_000, lossGraceMs: 300, growSettleMs: 400 });
  schedulers.push(gang);
  return { control, gang };
}

async function register(control: ControlPlane, ids: string[]): Promise<void> {
  for (const id of ids) {
    await control.registerWorker({ id, host: 'h', pid: 1, backend: 'cpu', device: 'cpu', address: { hostId: 'h', tcp: `tcp://${id}`, ipc: null } });
    await control.heartbeat(id, 60_000);
  }
}

/** The assignments of run number `epoch` of the job, once all `n` of them are in the inboxes. */
async function runOf(control: ControlPlane, ids: string[], epoch: number, n: number): Promise<Assign[]> {
  for (let i = 0; i < 300; i++) {
    const all = (await Promise.all(ids.map((id) => control.peekCommands(id)))).flat()
      .filter((c): c is Assign => c.type === 'assign' && c.assignment.membershipEpoch === epoch);
    if (all.length >= n) return all.sort((x, y) => x.assignment.rank - y.assignment.rank);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no run ${epoch} of ${n} ranks on ${ids.join(', ')}`);
}

test('scheduler: a lost worker shrinks the run to the survivor, a new worker grows it back at a checkpoint', async () => {
  const { control, gang } = setup();
  await register(control, ['a', 'b']);
  await control.createJob(elasticSpec(2, 1, 2), { id: 'j' });
  const running = gang.run('j');
  const first = await runOf(control, ['a', 'b'], 1, 2);
  assert.deepEqual(first.map((c) => [c.assignment.rank, c.assignment.worldSize]), [[0, 2], [1, 2]]);
  const run1 = first[0].assignment.runId;
  await control.appendEvent('j', { type: 'checkpoint', rank: 0, step: 4, checkpointKey: 'checkpoints/j/4', runId: run1 });

  // b dies: its heartbeat goes, the survivor reports the lost peer.
  await control.redis.del(control.keys.alive('b'));
  // It holds step 6 in memory (the checkpoint is step 4): the restart names it.
  await control.updateJob('j', { step: 6 });
  await control.appendEvent('j', { type: 'rank-failed', rank: 0, workerId: 'a', runId: run1, message: 'PEER_LOST: rank 1', heldStep: 6 });
  const [second] = await runOf(control, ['a'], 2, 1);
  assert.equal(second.assignment.worldSize, 1, 'the restarted run goes on with the one worker left');
  assert.deepEqual(second.assignment.resume, { checkpointKey: 'checkpoints/j/4', step: 4 });
  assert.deepEqual(second.assignment.memory, { step: 6, workerId: 'a' });
  const run2 = second.assignment.runId;
  // The run says it started from that memory: the restart's record follows.
  await control.appendEvent('j', { type: 'rank-started', rank: 0, workerId: 'a', runId: run2, step: 6, resumedFrom: 'memory' });
  for (let i = 0; i < 100 && !(await control.getJob('j'))!.restarts?.[0].resumedFrom; i++) await new Promise((r) => setTimeout(r, 20));
  const rec = (await control.getJob('j'))!.restarts![0];
  assert.deepEqual([rec.resumedFrom, rec.fromStep, rec.lostSteps, rec.stepReached], ['memory', 6, 0, 6]);

  // c registers: once it has been there growSettleMs, the scheduler asks this run (by its id) to pause at its next step.
  await register(control, ['c']);
  const registered = Date.now();
  let pause: WorkerCommand | undefined;
  for (let i = 0; i < 300 && !pause; i++) {
    pause = (await control.peekCommands('a')).find((c) => c.type === 'pause');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(pause && pause.type === 'pause', 'no pause to grow');
  assert.ok(Date.now() - registered >= 400, 'it grew onto a worker that had just registered');
  assert.equal(pause.runId, run2);
  assert.ok((await control.getJob('j'))!.growRequested);
  await control.appendEvent('j', { type: 'checkpoint', rank: 0, step: 7, checkpointKey: 'checkpoints/j/7', runId: run2 });
  await control.appendEvent('j', { type: 'rank-paused', rank: 0, workerId: 'a', runId: run2, step: 7 });
  const third = await runOf(control, ['a', 'c'], 3, 2);
  assert.deepEqual(third.map((c) => [c.assignment.rank, c.assignment.worldSize]), [[0, 2], [1, 2]]);
  assert.deepEqual(third.map((c) => c.assignment.workers), [['a', 'c'], ['a', 'c']]);
  assert.deepEqual(third[0].assignment.resume, { checkpointKey: 'checkpoints/j/7', step: 7 });
  const j = (await control.getJob('j'))!;
  assert.equal(j.state, 'running');
  assert.equal(j.growRequested, undefined, 'the request is cleared with the re-queue');
  assert.equal(j.restarts?.length, 1, 'growing is not a restart');
  const events = await control.readEvents('j', '-', 100);
  assert.ok(events.some((e) => e.type === 'job-state' && /growing from 1 to up to 2 replicas/.test(String(e.message))));
  assert.ok(events.some((e) => e.type === 'job-state' && e.state === 'queued' && /stopped at a checkpoint to grow/.test(String(e.message))));
  for (const c of third) await control.appendEvent('j', { type: 'rank-completed', rank: c.assignment.rank, runId: c.assignment.runId });
  assert.equal(await running, 'completed');
});

test('scheduler: a worker that failed the job twice recently is left out of its next run', async () => {
  const { control, gang } = setup();
  await register(control, ['a', 'b', 'c']);
  await control.createJob(elasticSpec(3, 1, 3), { id: 'j' });
  const now = Date.now();
  await control.updateJob('j', { restarts: [restart('b', now - 2000), restart('b', now - 1000)], lastCheckpoint: 'checkpoints/j/2' });
  const running = gang.run('j');
  const run = await runOf(control, ['a', 'b', 'c'], 1, 2);
  assert.deepEqual(run[0].assignment.workers, ['a', 'c']);
  assert.deepEqual(await control.peekCommands('b'), [], 'b gets nothing');
  for (const c of run) await control.appendEvent('j', { type: 'rank-completed', rank: c.assignment.rank, runId: c.assignment.runId });
  assert.equal(await running, 'completed');
});
