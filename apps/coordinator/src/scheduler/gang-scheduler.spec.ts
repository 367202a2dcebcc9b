// The gang scheduler against a real Redis, without Nest or BullMQ: claims, dispatch,
// the ways a run ends, and two schedulers (replicas) competing for the same workers.
// Worker entries are registry records written with ControlPlane (see app.e2e.spec.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ControlPlane, parseJobSpec, type JobSpec, type WorkerCommand } from '@tensorfleet/control';
import { startRedis, testId } from '@tensorfleet/infra';
import { GangScheduler, stepOf } from './gang-scheduler';
import { WaitQueue } from './wait-queue';

let url: string;
let stopRedis: () => Promise<void> = async () => undefined;
const conns: Redis[] = [];
const schedulers: GangScheduler[] = [];

before(async () => {
  if (process.env.TF_TEST_REDIS_URL) url = process.env.TF_TEST_REDIS_URL;
  else {
    const r = await startRedis({ label: 'gang-spec' });
    url = r.url;
    stopRedis = () => r.stop();
  }
});
after(async () => {
  for (const s of schedulers) s.close();
  for (const c of conns) {
    const keys = await c.keys('tf-gang-*');
    if (keys.length) await c.del(...keys);
    c.disconnect();
  }
  await stopRedis();
});

function setup(): { control: ControlPlane; prefix: string; gang: () => GangScheduler } {
  const prefix = testId('gang');
  const redis = new Redis(url);
  conns.push(redis);
  const control = new ControlPlane(redis, { prefix });
  return {
    control,
    prefix,
    gang: () => {
      const r = new Redis(url);
      conns.push(r);
      const g = new GangScheduler(new ControlPlane(r, { prefix }), { claimBackoffMs: 20, claimMaxBackoffMs: 100, followPollMs: 30, staleBusyMs: 200, reserveAfterMs: 120_000 });
      schedulers.push(g);
      return g;
    },
  };
}

function spec(dataParallel: number, maxRestarts = 0): JobSpec {
  const r = parseJobSpec({ model: { name: 'resnet18' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel }, batchSize: 2, steps: 5, optimizer: { type: 'sgd', lr: 0.1 }, recovery: { maxRestarts } });
  assert.ok(r.spec);
  return r.spec;
}

/** A job recorded and put on the wait queue, as JobsService.submit and SchedulerService.enqueue do. */
async function submitted(control: ControlPlane, s: JobSpec, id: string): Promise<void> {
  await new WaitQueue(control).add(await control.createJob(s, { id }));
}

async function workers(control: ControlPlane, ids: string[]): Promise<void> {
  for (const id of ids) {
    await control.registerWorker({ id, host: 'h', pid: 1, backend: 'cpu', device: 'cpu', address: { hostId: 'h', tcp: `tcp://${id}`, ipc: null } });
    await control.heartbeat(id, 60_000);
  }
}

async function assignsOf(control: ControlPlane, ids: string[]): Promise<Extract<WorkerCommand, { type: 'assign' }>[]> {
  for (let i = 0; i < 200; i++) {
    const all = (await Promise.all(ids.map((id) => control.peekCommands(id)))).flat().filter((c) => c.type === 'assign');
    if (all.length >= ids.length) return all as Extract<WorkerCommand, { type: 'assign' }>[];
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no assignments for ${ids.join(', ')}`);
}

test('a rank-failed event fails the job naming rank and worker; the other ranks get cancel', async () => {
  const { control, gang } = setup();
  await workers(control, ['a', 'b', 'c']);
  const job = await control.createJob(spec(3), { id: 'j' });
  const running = gang().run(job.id);
  const assigns = await assignsOf(control, ['a', 'b', 'c']);
  assert.deepEqual(assigns.map((x) => x.assignment.rank), [0, 1, 2]);
  const runId = assigns[0].assignment.runId;
  // An event of another run is ignored; this run's rank-failed ends it.
  await control.appendEvent(job.id, { type: 'rank-failed', rank: 0, workerId: 'a', runId: 'old-run', message: 'stale' });
  await control.appendEvent(job.id, { type: 'rank-completed', rank: 0, workerId: 'a', runId });
  await control.appendEvent(job.id, { type: 'rank-failed', rank: 1, workerId: 'b', runId, message: 'out of memory' });
  assert.equal(await running, 'failed');
  const j = await control.getJob(job.id);
  assert.equal(j?.error, 'rank 1 (worker b) failed: out of memory');
  assert.deepEqual((await control.peekCommands('a')).map((c) => c.type), ['assign', 'cancel']);
  assert.deepEqual((await control.peekCommands('b')).map((c) => c.type), ['assign']);
  assert.deepEqual((await control.peekCommands('c')).map((c) => c.type), ['assign', 'cancel']);
});

test('a member that re-registers (restarted worker, alive but idle) fails the run instead of hanging it', async () => {
  const { control, gang } = setup();
  await workers(control, ['solo']);
  await control.createJob(spec(1), { id: 'j' });
  const running = gang().run('j');
  await assignsOf(control, ['solo']);
  await workers(control, ['solo']);
  assert.equal(await running, 'failed');
  assert.match((await control.getJob('j'))!.error!, /^worker solo \(rank 0\) dropped the job.*restart budget spent \(0 of 0/);
});

test('a lost member re-queues the run from the last checkpoint while restarts are left, then the job fails naming the budget', async () => {
  const { control, gang } = setup();
  await workers(control, ['solo']);
  await control.createJob(spec(1, 1), { id: 'j' });
  const running = gang().run('j');
  const [first] = await assignsOf(control, ['solo']);
  await control.appendEvent('j', { type: 'checkpoint', rank: 0, step: 4, checkpointKey: 'checkpoints/j/4', runId: first.assignment.runId });
  await control.updateJob('j', { step: 6 });
  await workers(control, ['solo']);
  // The restart is dispatched as a resume from the checkpoint, to the worker that is there.
  let second: Extract<WorkerCommand, { type: 'assign' }> | undefined;
  for (let i = 0; i < 200 && !second; i++) {
    second = (await control.peekCommands('solo')).find((c): c is Extract<WorkerCommand, { type: 'assign' }> => c.type === 'assign' && c.assignment.runId !== first.assignment.runId);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(second, 'the run was not restarted');
  assert.deepEqual(second.assignment.resume, { checkpointKey: 'checkpoints/j/4', step: 4 });
  assert.equal(second.assignment.membershipEpoch, 2);
  const restarted = (await control.getJob('j'))!;
  assert.equal(restarted.state, 'running');
  assert.deepEqual(restarted.restarts?.map(({ at: _at, ...r }) => r), [{ cause: 'dropped the job (restarted or re-registered) without reporting', worker: 'solo', fromStep: 4, lostSteps: 2, stepReached: 6 }]);
  const events = await control.readEvents('j', '-', 100);
  assert.ok(events.some((e) => e.type === 'job-state' && e.state === 'queued' && /automatic restart 1 of 1, resumes from checkpoints\/j\/4/.test(String(e.message))));
  await workers(control, ['solo']);
  assert.equal(await running, 'failed');
  assert.match((await control.getJob('j'))!.error!, /restart budget spent \(1 of 1 automatic restarts used/);
});

test('a rank that reports and then goes idle is not lost', async () => {
  const { control, gang } = setup();
  await workers(control, ['a', 'b']);
  await control.createJob(spec(2), { id: 'j' });
  const running = gang().run('j');
  await assignsOf(control, ['a', 'b']);
  await control.appendEvent('j', { type: 'rank-completed', rank: 0, workerId: 'a' });
  await control.markWorker('a', { state: 'idle', jobId: '', rank: -1 });
  await control.unregisterWorker('a');
  await new Promise((r) => setTimeout(r, 150));
  assert.equal((await control.getJob('j'))!.state, 'running');
  await control.appendEvent('j', { type: 'rank-completed', rank: 1, workerId: 'b' });
  assert.equal(await running, 'completed');
});

test('two schedulers racing for the same workers: each worker is assigned once, the other job waits queued', async () => {
  const { control, gang } = setup();
  await workers(control, ['a', 'b', 'c']);
  await control.createJob(spec(2), { id: 'j1' });
  await control.createJob(spec(2), { id: 'j2' });
  const g1 = gang();
  const g2 = gang();
  const r1 = g1.run('j1');
  const r2 = g2.run('j2');
  await new Promise((r) => setTimeout(r, 300));
  const states = [(await control.getJob('j1'))!.state, (await control.getJob('j2'))!.state].sort();
  assert.deepEqual(states, ['queued', 'running']);
  const inboxes = await Promise.all(['a', 'b', 'c'].map((id) => control.peekCommands(id)));
  assert.equal(inboxes.flat().length, 2);
  assert.ok(inboxes.every((c) => c.length <= 1));
  // The running one completes: its workers go idle (as real workers do) and the other runs.
  const first = states[1] === 'running' && (await control.getJob('j1'))!.state === 'running' ? 'j1' : 'j2';
  const second = first === 'j1' ? 'j2' : 'j1';
  const members = (await control.getJob(first))!.members!;
  for (const m of members) {
    await control.appendEvent(first, { type: 'rank-completed', rank: m.rank, workerId: m.workerId });
    await control.markWorker(m.workerId, { state: 'idle', jobId: '', rank: -1 });
  }
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await control.getJob(first))!.state, 'completed');
  assert.equal((await control.getJob(second))!.state, 'running');
  const next = (await control.getJob(second))!.members!;
  for (const m of next) await control.appendEvent(second, { type: 'rank-cancelled', rank: m.rank, workerId: m.workerId });
  assert.deepEqual((await Promise.all([r1, r2])).sort(), ['cancelled', 'completed']);
});

test('two schedulers on the same job at once (a lapsed lock): each loss restarts it once, each epoch starts once, both follow to the end', async () => {
  const { control, gang } = setup();
  await workers(control, ['a', 'b', 'c']);
  await control.createJob(spec(1, 3), { id: 'j' });
  const g1 = gang();
  const g2 = gang();
  const runs = [g1.run('j'), g2.run('j')];
  const assigns = async () => (await Promise.all(['a', 'b', 'c'].map((id) => control.peekCommands(id)))).flat()
    .filter((c): c is Extract<WorkerCommand, { type: 'assign' }> => c.type === 'assign');
  const runningAfter = async (previous: string | null) => {
    for (let i = 0; i < 300; i++) {
      const j = (await control.getJob('j'))!;
      if (j.state === 'running' && j.runId !== previous) return j;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no run after ${previous}`);
  };
  // Two losses, each seen by both schedulers within a poll of each other.
  let run = await runningAfter(null);
  for (let k = 0; k < 2; k++) {
    await control.redis.del(control.keys.alive(run.members![0].workerId));
    run = await runningAfter(run.runId!);
  }
  // A moment for a stale scheduler to act on what it read before: nothing may change.
  await new Promise((r) => setTimeout(r, 300));
  const still = (await control.getJob('j'))!;
  assert.deepEqual([still.state, still.membershipEpoch, still.runId], ['running', run.membershipEpoch, run.runId]);
  await control.appendEvent('j', { type: 'rank-completed', rank: 0, workerId: run.members![0].workerId, runId: run.runId! });
  assert.deepEqual(await Promise.all(runs), ['completed', 'completed'], 'each scheduler follows the job until it ends');
  const done = (await control.getJob('j'))!;
  assert.equal(done.restarts?.length, 2, `restarts ${JSON.stringify(done.restarts)}`);
  const sent = await assigns();
  assert.deepEqual(sent.map((c) => c.assignment.membershipEpoch).sort(), [1, 2, 3], 'one assignment per epoch, none skipped');
  assert.equal(new Set(sent.map((c) => c.assignment.runId)).size, 3);
  const events = await control.readEvents('j', '-', 1000);
  assert.equal(events.filter((e) => e.type === 'job-state' && e.state === 'running').length, 3, 'one start per epoch');
  assert.equal(events.filter((e) => e.type === 'job-state' && /automatic restart/.test(String(e.message))).length, 2, 'one restart per loss');
  assert.equal(events.filter((e) => e.type === 'job-state' && e.state === 'completed').length, 1);
});

test('a re-run finds the job running and follows it; a stale queueing does nothing; close() stops a waiting run', async () => {
  const { control, gang } = setup();
  await workers(control, ['a']);
  await control.createJob(spec(1), { id: 'j' });
  const g1 = gang();
  void g1.run('j');
  const [assign] = await assignsOf(control, ['a']);
  g1.close();
  const g2 = gang();
  assert.equal(await g2.run('j', 7), 'superseded');
  const again = g2.run('j', 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual((await control.peekCommands('a')).length, 1, 'no second assignment');
  await control.appendEvent('j', { type: 'rank-paused', rank: 0, workerId: 'a', runId: assign.assignment.runId });
  assert.equal(await again, 'paused');

  await control.createJob(spec(5), { id: 'big' });
  const g3 = gang();
  const waiting = g3.run('big');
  await new Promise((r) => setTimeout(r, 100));
  g3.close();
  assert.equal(await waiting, 'shutdown');
  assert.equal((await control.getJob('big'))!.state, 'queued');
});

test('a waiting job of higher priority goes first; one larger than the cluster does not block', async () => {
  const { control, gang } = setup();
  await workers(control, ['a', 'b']);
  await control.createJob(spec(1), { id: 'elsewhere' });
  await control.updateJob('elsewhere', { state: 'running' });
  await control.markWorker('b', { state: 'busy', jobId: 'elsewhere', rank: 0 });
  const lowSpec = { ...spec(1), priority: 0 };
  const highSpec = { ...spec(2), priority: 10 };
  const hugeSpec = { ...spec(3), priority: 100 };
  await submitted(control, hugeSpec, 'huge');   // 3 ranks, 2 workers alive: cannot run, must not block
  await submitted(control, highSpec, 'high');
  await submitted(control, lowSpec, 'low');
  const low = gang().run('low');
  const high = gang().run('high');
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual([(await control.getJob('high'))!.state, (await control.getJob('low'))!.state], ['queued', 'queued'], 'low waits although a is idle');
  await control.markWorker('b', { state: 'idle', jobId: '', rank: -1 });
  const [ha, hb] = await assignsOf(control, ['a', 'b']);
  assert.deepEqual([ha.assignment.jobId, hb.assignment.jobId], ['high', 'high']);
  for (const r of [0, 1]) await control.appendEvent('high', { type: 'rank-completed', rank: r, workerId: r ? 'b' : 'a' });
  assert.equal(await high, 'completed');
  await control.markWorker('a', { state: 'idle', jobId: '', rank: -1 });
  await control.markWorker('b', { state: 'idle', jobId: '', rank: -1 });
  for (let i = 0; i < 100 && (await control.getJob('low'))!.state !== 'running'; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal((await control.getJob('low'))!.state, 'running');
  await control.updateJob('low', { state: 'cancelled' });
  assert.equal(await low, 'cancelled');
});

test('equal priorities: a small job backfills around a waiting gang until the gang has waited reserveAfterMs', async () => {
  const { control } = setup();
  const r = new Redis(url);
  conns.push(r);
  const g = new GangScheduler(new ControlPlane(r, { prefix: control.keys.prefix }), { claimBackoffMs: 20, claimMaxBackoffMs: 50, followPollMs: 30, staleBusyMs: 200, reserveAfterMs: 500 });
  schedulers.push(g);
  await workers(control, ['a', 'b', 'c']);
  await control.createJob(spec(1), { id: 'elsewhere' });
  await control.updateJob('elsewhere', { state: 'running' });
  await control.markWorker('c', { state: 'busy', jobId: 'elsewhere', rank: 0 });
  await submitted(control, spec(3), 'gang');
  const gangRun = g.run('gang');
  // Fresh: the 1-rank job takes an idle worker at once.
  await submitted(control, spec(1), 'early');
  const earlyRun = g.run('early');
  const [ea] = await assignsOf(control, ['a']);
  assert.equal(ea.assignment.jobId, 'early');
  await control.updateJob('early', { state: 'cancelled' });
  assert.equal(await earlyRun, 'cancelled');
  await control.markWorker('a', { state: 'idle', jobId: '', rank: -1 });
  await control.redis.del(control.keys.inbox('a'));
  // After reserveAfterMs the gang holds its reservation: a newer small job waits.
  await new Promise((res) => setTimeout(res, 600));
  await submitted(control, spec(1), 'late');
  const lateRun = g.run('late');
  await new Promise((res) => setTimeout(res, 300));
  assert.equal((await control.getJob('late'))!.state, 'queued', 'the newer job waits behind the reservation although a and b are idle');
  await control.markWorker('c', { state: 'idle', jobId: '', rank: -1 });
  const assigns = await assignsOf(control, ['a', 'b', 'c']);
  assert.deepEqual(assigns.map((x) => x.assignment.jobId), ['gang', 'gang', 'gang']);
  await control.updateJob('gang', { state: 'cancelled' });
  assert.equal(await gangRun, 'cancelled');
  await control.updateJob('late', { state: 'cancelled' });
  assert.equal(await lateRun, 'cancelled');
});

test('a worker left busy with an ended job is set idle after staleBusyMs when a job needs it', async () => {
  const { control, gang } = setup();
  await workers(control, ['a', 'b']);
  await control.createJob(spec(1), { id: 'old' });
  await control.updateJob('old', { state: 'cancelled', finishedAt: Date.now() });
  await control.markWorker('a', { state: 'busy', jobId: 'old', rank: 0 });
  await control.markWorker('b', { state: 'busy', jobId: 'deleted-job', rank: 0 });
  await control.createJob(spec(2), { id: 'new' });
  const t0 = Date.now();
  const running = gang().run('new');
  const assigns = await assignsOf(control, ['a', 'b']);
  assert.ok(Date.now() - t0 >= 200, 'not before the grace period');
  assert.deepEqual(assigns.map((x) => x.assignment.jobId), ['new', 'new']);
  await control.updateJob('new', { state: 'cancelled' });
  assert.equal(await running, 'cancelled');
});

test('stepOf reads the step of a checkpoint key', () => {
  assert.equal(stepOf('checkpoints/job-1/120'), 120);
  assert.equal(stepOf('checkpoints/job-1/120/'), 120);
  assert.equal(stepOf('weird'), 0);
});

test('a survivor that reports PEER_LOST and goes idle between the scheduler\'s two reads is not blamed: the rank that stopped is', async () => {
  const { control, prefix } = setup();
  await workers(control, ['a', 'b']);
  await control.createJob(spec(2), { id: 'j' });
  const r = new Redis(url);
  conns.push(r);
  const seen = new ControlPlane(r, { prefix });
  const run: { id?: string } = {};
  let injected = false;
  // The race CI hit: the scheduler reads the events (nothing yet), then rank 0 appends its
  // PEER_LOST and goes idle, then rank 1's heartbeat expires; the next look sees rank 0 gone.
  const readEvents = seen.readEvents.bind(seen);
  seen.readEvents = async (...args: Parameters<ControlPlane['readEvents']>) => {
    const events = await readEvents(...args);
    if (run.id && !injected) {
      injected = true;
      await control.appendEvent('j', { type: 'rank-failed', rank: 0, workerId: 'a', runId: run.id, message: 'PEER_LOST (rank 1): no reply' });
      await workers(control, ['a']);
      await control.redis.del(control.keys.alive('b'));
    }
    return events;
  };
  const g = new GangScheduler(seen, { claimBackoffMs: 20, claimMaxBackoffMs: 100, followPollMs: 30, staleBusyMs: 200, reserveAfterMs: 120_000, lossGraceMs: 2000 });
  schedulers.push(g);
  const running = g.run('j');
  run.id = (await assignsOf(control, ['a', 'b']))[0].assignment.runId;
  assert.equal(await running, 'failed');
  const error = (await control.getJob('j'))!.error!;
  assert.ok(injected, 'the race was not set up');
  assert.match(error, /^rank 0 \(worker a\) failed: PEER_LOST \(rank 1\).*after worker b \(rank 1\) stopped heartbeating/, error);
});

test('an automatic restart cancels the survivors\' old run by its run id, so the restarted run is not stopped by it', async () => {
  const { control, gang } = setup();
  await workers(control, ['a', 'b', 'spare']);
  await control.createJob(spec(2, 1), { id: 'j' });
  const running = gang().run('j');
  const first = await assignsOf(control, ['a', 'b']);
  const oldRun = first[0].assignment.runId;
  await control.redis.del(control.keys.alive('b'));
  let cancel: WorkerCommand | undefined;
  for (let i = 0; i < 200 && !cancel; i++) {
    cancel = (await control.peekCommands('a')).find((c) => c.type === 'cancel');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(cancel && cancel.type === 'cancel', 'the survivor got no cancel');
  assert.equal(cancel.runId, oldRun, 'the cancel names the old run');
  const job = (await control.getJob('j'))!;
  assert.equal(job.restarts?.length, 1);
  assert.notEqual(job.runId ?? 'queued', oldRun);
  await control.updateJob('j', { state: 'cancelled' });
  await running.catch(() => undefined);
});

test('a pause pending when the run loses a worker pauses the job at its last checkpoint instead of restarting it', async () => {
  const { control, gang } = setup();
  await workers(control, ['solo']);
  await control.createJob(spec(1, 3), { id: 'j' });
  const running = gang().run('j');
  const [first] = await assignsOf(control, ['solo']);
  await control.appendEvent('j', { type: 'checkpoint', rank: 0, step: 4, checkpointKey: 'checkpoints/j/4', runId: first.assignment.runId });
  await control.updateJob('j', { pauseRequested: Date.now() });
  await workers(control, ['solo']);
  assert.equal(await running, 'paused');
  const job = (await control.getJob('j'))!;
  assert.equal(job.state, 'paused');
  assert.equal(job.pauseRequested ?? null, null);
  assert.equal(job.restarts?.length ?? 0, 0, 'no restart was used');
  const events = await control.readEvents('j', '-', 100);
  assert.ok(events.some((e) => e.type === 'job-state' && e.state === 'paused' && /a pause was pending: paused, resumes from checkpoints\/j\/4/.test(String(e.message))), JSON.stringify(events.map((e) => e.message)));
});

test('a TIMEOUT while every member still heartbeats (a stalled peer) restarts the run, blaming the rank it names, and cancels both ranks\' old run', async () => {
  const { control, prefix } = setup();
  await workers(control, ['a', 'b']);
  await control.createJob(spec(2, 1), { id: 'j' });
  const r = new Redis(url);
  conns.push(r);
  const g = new GangScheduler(new ControlPlane(r, { prefix }), { claimBackoffMs: 20, claimMaxBackoffMs: 100, followPollMs: 30, staleBusyMs: 200, reserveAfterMs: 120_000, lossGraceMs: 300 });
  schedulers.push(g);
  const running = g.run('j');
  const [first] = await assignsOf(control, ['a', 'b']);
  const oldRun = first.assignment.runId;
  await control.appendEvent('j', { type: 'rank-failed', rank: 0, workerId: 'a', runId: oldRun, message: 'TIMEOUT (rank 1): no message from rank 1 before the deadline' });
  let job = (await control.getJob('j'))!;
  for (let i = 0; i < 200 && !(job.restarts?.length); i++) {
    await new Promise((res) => setTimeout(res, 20));
    job = (await control.getJob('j'))!;
  }
  assert.equal(job.restarts?.length, 1, 'the stall did not restart the run');
  assert.equal(job.restarts![0].worker, 'b');
  assert.match(job.restarts![0].cause, /stalled a collective/);
  for (const w of ['a', 'b']) {
    const cancels = (await control.peekCommands(w)).filter((c) => c.type === 'cancel');
    assert.deepEqual(cancels.map((c) => c.type === 'cancel' && c.runId), [oldRun], `worker ${w} is told to stop the old run`);
  }
  await control.updateJob('j', { state: 'cancelled' });
  await running.catch(() => undefined);
});

test('members whose nodes demand CURVE get keys with their assignment (made at each one), each secret only in its own rank\'s assignment and none in the job record', async () => {
  const { control, gang } = setup();
  for (const id of ['ka', 'kb']) {
    await control.registerWorker({ id, host: 'h', pid: 1, backend: 'cpu', device: 'cpu', address: { hostId: id, tcp: `tcp://${id}`, ipc: null, curve: { key: 'ab'.repeat(32), mode: 'tcp' } } });
    await control.heartbeat(id, 60_000);
  }
  await submitted(control, spec(2), 'jk');
  const job = { id: 'jk' };
  void gang().run(job.id);
  const assigns = await assignsOf(control, ['ka', 'kb']);
  const [c0, c1] = assigns.map((x) => x.assignment.curve!);
  assert.match(c0.secretKey, /^[0-9a-f]{64}$/);
  assert.notEqual(c0.secretKey, c1.secretKey);
  assert.deepEqual(c0.peerKeys, [c0.publicKey, c1.publicKey]);
  assert.deepEqual(c1.peerKeys, c0.peerKeys);
  const record = JSON.stringify(await control.getJob(job.id));
  for (const c of [c0, c1]) assert.ok(!record.includes(c.secretKey), 'no secret key in the job record');
});

/** A scheduler with a minute of claim backoff: only a wake-up can start a waiting job within a test. */
function patientScheduler(): { control: ControlPlane; g: GangScheduler } {
  const prefix = testId('gang');
  const control = new ControlPlane(new Redis(url), { prefix });
  conns.push(control.redis);
  const r = new Redis(url);
  conns.push(r);
  const g = new GangScheduler(new ControlPlane(r, { prefix }), { claimBackoffMs: 60_000, claimMaxBackoffMs: 60_000, followPollMs: 30, staleBusyMs: 60_000, reserveAfterMs: 120_000 });
  schedulers.push(g);
  return { control, g };
}

test('a waiting job claims as soon as a worker is freed, not at the end of its backoff', async () => {
  // Only the workers-freed wake-up can start the job within the test.
  const { control, g } = patientScheduler();
  const sub = new Redis(url);
  conns.push(sub);
  const unsubscribe = await control.onWorkersFreed(sub, () => g.workersFreed());
  await workers(control, ['a']);
  await control.markWorker('a', { state: 'busy', jobId: 'other', rank: 0 });
  await submitted(control, spec(2), 'j');
  const running = g.run('j');
  await new Promise((res) => setTimeout(res, 200));
  assert.equal((await control.getJob('j'))!.state, 'queued', 'one idle worker of two: it waits');
  const t0 = Date.now();
  await workers(control, ['b']);                       // registers idle: one of two
  await control.releaseWorkers('other', ['a']);        // the other job ends: two of two
  await assignsOf(control, ['a', 'b']);
  const ms = Date.now() - t0;
  assert.ok(ms < 10_000, `assigned ${ms} ms after the release, under its 60 s backoff`);
  await unsubscribe();
  for (const [rank, workerId] of ['a', 'b'].entries()) await control.appendEvent('j', { type: 'rank-completed', rank, workerId });
  assert.equal(await running, 'completed');
});

test('a job held back by a higher-priority one claims as soon as that one starts, not at the end of its backoff', async () => {
  // No workers-freed subscription: only the wake-up of a job that stops waiting can start the
  // low one within the test.
  const { control, g } = patientScheduler();
  await workers(control, ['a', 'b']);
  await submitted(control, { ...spec(1), priority: 10 }, 'high');
  await submitted(control, { ...spec(1), priority: 0 }, 'low');
  const low = g.run('low');
  await new Promise((res) => setTimeout(res, 200));
  assert.equal((await control.getJob('low'))!.state, 'queued', 'outranked by the waiting high job: it waits');
  const t0 = Date.now();
  const high = g.run('high');
  const [x, y] = await assignsOf(control, ['a', 'b']);
  const ms = Date.now() - t0;
  assert.deepEqual([x.assignment.jobId, y.assignment.jobId].sort(), ['high', 'low']);
  assert.ok(ms < 10_000, `low assigned ${ms} ms after high started, under its 60 s backoff`);
  for (const [id, w] of [['high', x.assignment.jobId === 'high' ? 'a' : 'b'], ['low', x.assignment.jobId === 'low' ? 'a' : 'b']]) {
    await control.appendEvent(id, { type: 'rank-completed', rank: 0, workerId: w });
  }
  assert.deepEqual([await high, await low], ['completed', 'completed']);
});
