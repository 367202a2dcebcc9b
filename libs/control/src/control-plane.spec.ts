import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ControlPlane } from './control-plane';
import { parseJobSpec, type JobSpec } from './job-spec';
import { specPrefix, specRedis, type SpecRedis } from './spec-redis';
import type { WorkerRegistration } from './types';

let srv: SpecRedis;
const conns: Redis[] = [];
function plane(name: string, prefix = specPrefix(name)): ControlPlane {
  prefixes.add(prefix);
  const r = new Redis(srv.url);
  conns.push(r);
  return new ControlPlane(r, { prefix });
}
const reg = (id: string): WorkerRegistration => ({ id, host: 'h', pid: 1, backend: 'wasm', device: 'cpu', address: { hostId: 'h', tcp: `tcp://127.0.0.1:${id.length}`, ipc: null } });
const spec = (): JobSpec => {
  const r = parseJobSpec({ model: { name: 'resnet18' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel: 2 }, batchSize: 8, steps: 10, optimizer: { type: 'sgd', lr: 0.1 } });
  assert.ok(r.spec);
  return r.spec;
};

before(async () => { srv = await specRedis(); });
const prefixes = new Set<string>();
after(async () => {
  for (const c of conns) {
    for (const p of prefixes) {
      const keys = await c.keys(`${p}*`);
      if (keys.length) await c.del(...keys);
    }
    c.disconnect();
  }
  await srv.stop();
});

test('options are validated in the constructor', () => {
  const r = new Redis(srv.url, { lazyConnect: true });
  assert.throws(() => new ControlPlane(r, { prefix: '' }), /prefix/);
  assert.throws(() => new ControlPlane(r, { heartbeatTtlMs: 0 }), /heartbeatTtlMs/);
  assert.equal(new ControlPlane(r, { prefix: 'fleet' }).keys.worker('w'), 'fleet:worker:w');
  assert.equal(new ControlPlane(r).keys.alive('w'), 'tf:worker:w:alive');
  r.disconnect();
});

test('registry: register, heartbeat TTL decides alive, mark, list sorted', async () => {
  const cp = plane('registry');
  await cp.registerWorker(reg('w2'));
  await cp.registerWorker(reg('w1'));
  await cp.heartbeat('w2', 1000);
  let ws = await cp.listWorkers();
  assert.deepEqual(ws.map((w) => [w.id, w.alive, w.state, w.jobId, w.rank]), [['w1', true, 'idle', null, null], ['w2', true, 'idle', null, null]]);
  assert.deepEqual(ws[0].address, { hostId: 'h', tcp: 'tcp://127.0.0.1:2', ipc: null });
  assert.equal(await cp.redis.hget(cp.keys.worker('w1'), 'state'), 'idle');
  await cp.markWorker('w1', { state: 'busy', jobId: 'j', rank: 3 });
  assert.deepEqual(await cp.getWorker('w1').then((w) => [w?.state, w?.jobId, w?.rank]), ['busy', 'j', 3]);
  await cp.markWorker('w1', { state: 'idle', jobId: '', rank: -1 });
  assert.deepEqual(await cp.getWorker('w1').then((w) => [w?.state, w?.jobId, w?.rank]), ['idle', null, null]);
  await new Promise((r) => setTimeout(r, 1100));
  ws = await cp.listWorkers();
  assert.deepEqual(ws.map((w) => w.alive), [true, false]);
  await cp.unregisterWorker('w2');
  assert.deepEqual((await cp.listWorkers()).map((w) => w.id), ['w1']);
  assert.equal(await cp.getWorker('w2'), null);
});

test('registry: a worker registering again mid-run is written busy at once, so no other job can claim it', async () => {
  const cp = plane('rereg');
  await cp.registerWorker(reg('a'));
  await cp.registerWorker(reg('b'));
  assert.deepEqual(await cp.claimWorkers('job1', 1), ['a']);
  // The registry forgets 'a' (lost too long) while its run goes on; it registers again.
  await cp.unregisterWorker('a');
  const info = await cp.registerWorker(reg('a'), { busy: { jobId: 'job1', rank: 0 }, ttlMs: 5000 });
  assert.deepEqual([info.state, info.jobId, info.rank], ['busy', 'job1', 0]);
  assert.deepEqual(await cp.getWorker('a').then((w) => [w?.state, w?.jobId, w?.rank, w?.alive]), ['busy', 'job1', 0, true]);
  const ttl = await cp.redis.pttl(cp.keys.alive('a'));
  assert.ok(ttl > 4000 && ttl <= 5000, `heartbeat TTL ${ttl} ms`);
  assert.equal(await cp.claimWorkers('job2', 2), null, "only 'b' is free");
  assert.deepEqual(await cp.claimWorkers('job2', 1), ['b']);
  // Without `busy` it comes back idle.
  await cp.registerWorker(reg('a'));
  assert.equal((await cp.getWorker('a'))?.state, 'idle');
});

test('registry: heartbeat only for registered workers; lost workers are forgotten after the cutoff, alive ones never', async () => {
  const cp = plane('forget');
  assert.equal(await cp.heartbeat('ghost', 1000), false);
  assert.equal(await cp.redis.exists(cp.keys.worker('ghost'), cp.keys.alive('ghost')), 0, 'a refused heartbeat writes nothing');
  const t0 = Date.now();
  await cp.registerWorker(reg('alive'), { now: t0 });
  await cp.registerWorker(reg('lost'), { now: t0 });
  await cp.registerWorker(reg('recent'), { now: t0 });
  assert.equal(await cp.heartbeat('alive', 60_000), true);
  await cp.redis.del(cp.keys.alive('lost'), cp.keys.alive('recent'));
  await cp.redis.hset(cp.keys.worker('lost'), 'lastSeen', String(t0 - 600_000));
  await cp.redis.rpush(cp.keys.inbox('lost'), '{}');
  assert.deepEqual(await cp.forgetLostWorkers(300_000, ['alive']), [], 'alive workers are never forgotten');
  assert.deepEqual(await cp.forgetLostWorkers(300_000), ['lost']);
  assert.deepEqual((await cp.listWorkers()).map((w) => [w.id, w.alive]), [['alive', true], ['recent', false]]);
  assert.equal(await cp.redis.exists(cp.keys.worker('lost'), cp.keys.inbox('lost')), 0);
  assert.equal(await cp.heartbeat('lost', 1000), false, 'a forgotten worker must register again');
  assert.deepEqual(await cp.forgetLostWorkers(0, [], Date.now() + 1), ['recent']);
  await assert.rejects(cp.forgetLostWorkers(-1), /lostForMs/);
});

test('claim (Lua): all or nothing, alive idle only, ranks by id, re-claim by the same job, release', async () => {
  const cp = plane('claim');
  for (const id of ['a', 'b', 'c', 'd']) await cp.registerWorker(reg(id));
  await cp.redis.del(cp.keys.alive('b'));            // b is dead
  await cp.markWorker('c', { state: 'busy', jobId: 'other', rank: 0 });
  assert.equal(await cp.claimWorkers('j1', 3), null);   // only a and d qualify
  assert.deepEqual((await cp.listWorkers()).map((w) => w.state), ['idle', 'idle', 'busy', 'idle'], 'a failed claim marks nothing');
  assert.deepEqual(await cp.claimWorkers('j1', 2), ['a', 'd']);
  assert.deepEqual((await cp.listWorkers()).filter((w) => w.jobId === 'j1').map((w) => [w.id, w.rank]), [['a', 0], ['d', 1]]);
  // A coordinator that died after claiming gets the same workers back on its re-run.
  assert.deepEqual(await cp.claimWorkers('j1', 2), ['a', 'd']);
  assert.equal(await cp.claimWorkers('j2', 1), null);
  assert.equal(await cp.releaseWorkers('j1', ['a', 'd', 'c']), 2, 'c holds another job and stays busy');
  assert.deepEqual((await cp.listWorkers()).map((w) => [w.state, w.jobId]), [['idle', null], ['idle', null], ['busy', 'other'], ['idle', null]]);
});

test('claim reads the idle index, not the registry: O(idle) keys, kept in step by every state change', async () => {
  const cp = plane('idle-index');
  for (const id of ['a', 'b', 'c', 'd', 'e']) await cp.registerWorker(reg(id));
  const idleSet = async () => (await cp.redis.smembers(cp.keys.idleWorkers())).sort();
  assert.deepEqual(await idleSet(), ['a', 'b', 'c', 'd', 'e']);
  await cp.markWorker('c', { state: 'busy', jobId: 'other', rank: 0 });
  assert.deepEqual(await idleSet(), ['a', 'b', 'd', 'e'], 'a busy mark leaves the index');

  // The claim's script is given only the idle set's members (and the job's own claims): count
  // the keys of the EVAL it sends.
  const sent: number[] = [];
  const evalOrig = cp.redis.eval.bind(cp.redis) as (...a: unknown[]) => Promise<unknown>;
  (cp.redis as unknown as { eval: (...a: unknown[]) => Promise<unknown> }).eval = (...a: unknown[]) => { sent.push(Number(a[1])); return evalOrig(...a); };
  assert.deepEqual(await cp.claimWorkers('j1', 2), ['a', 'b']);
  assert.equal(sent.at(-1), 3 + 2 * 4, 'registry, idle set, claim set and 4 idle candidates: c (busy) is not read');
  assert.deepEqual(await idleSet(), ['d', 'e']);
  assert.deepEqual((await cp.redis.smembers(cp.keys.jobClaims('j1'))).sort(), ['a', 'b']);
  // j1's re-claim (its coordinator died before recording the run) reads its claim set.
  assert.deepEqual(await cp.claimWorkers('j1', 2), ['a', 'b']);
  assert.equal(await cp.releaseWorkers('j1', ['a', 'b']), 2);
  assert.deepEqual(await idleSet(), ['a', 'b', 'd', 'e']);
  assert.deepEqual(await cp.redis.smembers(cp.keys.jobClaims('j1')), [], 'a release empties the claim set');

  // A stale index entry (the hash says busy) is not claimed and is dropped on the way.
  await cp.redis.hset(cp.keys.worker('d'), 'state', 'busy', 'jobId', 'elsewhere');
  assert.deepEqual(await cp.claimWorkersBetween('j2', 1, 5, ['e']), ['a', 'b'], 'e is excluded, d is not idle');
  assert.ok(!(await idleSet()).includes('d'), 'the stale entry went');
  // An idle worker missing from the index (a Redis from before it) comes back with indexIdleWorkers.
  await cp.markWorker('c', { state: 'idle', jobId: '', rank: -1 });
  await cp.redis.srem(cp.keys.idleWorkers(), 'c');
  assert.equal(await cp.claimWorkers('j3', 2), null, 'only e is in the index');
  assert.equal(await cp.indexIdleWorkers(), 2);
  assert.deepEqual(await cp.claimWorkers('j3', 2), ['c', 'e']);
  await cp.unregisterWorker('e');
  await cp.releaseWorkers('j3', ['c']);
  assert.deepEqual(await idleSet(), ['c']);
  // forgetting a lost worker takes it out of the index too
  await cp.redis.del(cp.keys.alive('c'));
  assert.deepEqual(await cp.forgetLostWorkers(0, [], Date.now() + 1), ['c']);
  assert.deepEqual(await idleSet(), []);
});

test('claim: concurrent claimers over separate connections never share a worker', async () => {
  const prefix = specPrefix('race');
  const planes = Array.from({ length: 6 }, () => plane('race', prefix));
  for (let i = 0; i < 5; i++) await planes[0].registerWorker(reg(`w${i}`));
  const results = await Promise.all(Array.from({ length: 12 }, (_, i) => planes[i % planes.length].claimWorkers(`job${i}`, 2)));
  const won = results.filter((r): r is string[] => r !== null);
  assert.equal(won.length, 2, 'five workers make two gangs of two');
  const ids = won.flat();
  assert.equal(new Set(ids).size, ids.length);
  const busy = (await planes[0].listWorkers()).filter((w) => w.state === 'busy');
  assert.equal(busy.length, 4);
});

test('inbox: push, peek, BLPOP on a dedicated connection, timeout gives null', async () => {
  const prefix = specPrefix('inbox');
  const cp = plane('inbox', prefix);
  const blocking = plane('inbox', prefix);
  const waiting = blocking.nextCommand('w', 5);
  await new Promise((r) => setTimeout(r, 50));
  await cp.pushCommand('w', { type: 'cancel', jobId: 'j' });
  assert.deepEqual(await waiting, { type: 'cancel', jobId: 'j' });
  await cp.pushCommand('w', { type: 'pause', jobId: 'j' });
  assert.deepEqual(await cp.peekCommands('w'), [{ type: 'pause', jobId: 'j' }]);
  assert.deepEqual(await cp.nextCommand('w', 1, blocking.redis), { type: 'pause', jobId: 'j' });
  const t0 = Date.now();
  assert.equal(await blocking.nextCommand('w', 1), null);
  assert.ok(Date.now() - t0 >= 900);
});

test('jobs: create, get, list newest first with state filter, update with null delete, CAS transition', async () => {
  const cp = plane('jobs');
  const j1 = await cp.createJob(spec(), { id: 'j1', now: 1000, totalSteps: 10 });
  await cp.createJob(spec(), { id: 'j2', now: 2000 });
  await assert.rejects(cp.createJob(spec(), { id: 'j1' }), /already exists/);
  assert.deepEqual(await cp.getJob('j1'), j1);
  assert.equal(j1.state, 'queued');
  assert.deepEqual((await cp.listJobs()).map((j) => j.id), ['j2', 'j1']);
  await cp.updateJob('j1', {
    state: 'running', members: [{ rank: 0, workerId: 'a', address: { hostId: 'h', tcp: 'x', ipc: null } }], lastCheckpoint: 'checkpoints/j1/5', error: 'e',
  });
  await cp.updateJob('j1', { error: null });
  const got = await cp.getJob('j1');
  assert.equal(got?.state, 'running');
  assert.equal(got?.error, undefined);
  assert.deepEqual(got?.members, [{ rank: 0, workerId: 'a', address: { hostId: 'h', tcp: 'x', ipc: null } }]);
  assert.equal(got?.lastCheckpoint, 'checkpoints/j1/5');
  assert.deepEqual(got?.spec, spec());
  assert.deepEqual((await cp.listJobs({ state: 'running' })).map((j) => j.id), ['j1']);
  assert.deepEqual(await cp.transitionJob('j1', ['queued'], { state: 'cancelled' }), { ok: false, previous: 'running' });
  assert.deepEqual(await cp.transitionJob('j1', ['queued', 'running'], { state: 'cancelled', finishedAt: 5, members: null }), { ok: true, previous: 'running' });
  const c = await cp.getJob('j1');
  assert.deepEqual([c?.state, c?.finishedAt, c?.members], ['cancelled', 5, undefined]);
  assert.deepEqual(await cp.transitionJob('nope', ['queued'], { state: 'running' }), { ok: false, previous: null });
  assert.equal(await cp.getJob('nope'), null);
});

test('transitionJob and dispatchIfState with a guard (fencing token): only while the record holds it', async () => {
  const cp = plane('guard');
  await cp.createJob(spec(), { id: 'g' });
  // membershipEpoch 0 as created: a scheduler that read epoch 0 may start epoch 1, once.
  assert.deepEqual(await cp.transitionJob('g', ['queued'], { state: 'scheduled', runId: 'g.1.a', membershipEpoch: 1 }, { membershipEpoch: 0, attempt: 1 }), { ok: true, previous: 'queued' });
  await cp.transitionJob('g', ['scheduled'], { state: 'queued' });
  assert.deepEqual(await cp.transitionJob('g', ['queued'], { state: 'scheduled', runId: 'g.1.b', membershipEpoch: 1 }, { membershipEpoch: 0 }), { ok: false, previous: 'queued' }, 'a second start of epoch 1 is refused');
  assert.equal((await cp.getJob('g'))?.runId, 'g.1.a');
  await cp.transitionJob('g', ['queued'], { state: 'scheduled' });
  const cmd = { type: 'cancel' as const, jobId: 'g' };
  assert.deepEqual(await cp.dispatchIfState('g', 'scheduled', { state: 'running' }, [{ workerId: 'w', cmd }], { runId: 'g.1.b' }), { ok: false, previous: 'scheduled' });
  assert.deepEqual(await cp.peekCommands('w'), [], 'a refused dispatch pushes nothing');
  assert.deepEqual(await cp.dispatchIfState('g', 'scheduled', { state: 'running' }, [{ workerId: 'w', cmd }], { runId: 'g.1.a' }), { ok: true, previous: 'scheduled' });
  assert.deepEqual(await cp.peekCommands('w'), [cmd]);
  // A follower of another run cannot end this one; null guards on an absent field.
  assert.equal((await cp.transitionJob('g', ['running'], { state: 'failed' }, { runId: 'g.0.z' })).ok, false);
  assert.equal((await cp.transitionJob('g', ['running'], { state: 'failed' }, { runId: null })).ok, false);
  assert.equal((await cp.getJob('g'))?.state, 'running');
  assert.deepEqual(await cp.transitionJob('g', ['running'], { state: 'completed', runId: null }, { runId: 'g.1.a' }), { ok: true, previous: 'running' });
  assert.equal((await cp.transitionJob('g', ['completed'], { error: 'x' }, { runId: null })).ok, true);
  assert.deepEqual(await cp.getJob('g').then((j) => [j?.state, j?.error]), ['completed', 'x']);
});

test('metrics: exact round trip, exclusive cursor, rank 0 updates the record', async () => {
  const cp = plane('metrics');
  await cp.createJob(spec(), { id: 'm' });
  const ids: string[] = [];
  for (let step = 1; step <= 5; step++) {
    ids.push(await cp.appendMetric('m', { kind: 'train', step, epoch: 0, loss: 2.5 / step, accuracy: step / 10, lr: 0.1, imagesPerSec: 100 + step, rank: 0, ts: step }));
  }
  await cp.appendMetric('m', { kind: 'train', step: 6, epoch: 0, loss: 99, accuracy: 0, rank: 1, ts: 6 });
  await cp.appendMetric('m', { kind: 'eval', step: 5, epoch: 0, loss: 0.7, accuracy: 0.8, rank: 0, ts: 7 });
  const all = await cp.readMetrics('m');
  assert.equal(all.length, 7);
  assert.equal(all[2].loss, 2.5 / 3, 'numbers come back exactly');
  assert.equal(all[2].id, ids[2]);
  const after2 = await cp.readMetrics('m', ids[1], 2);
  assert.deepEqual(after2.map((e) => e.step), [3, 4]);
  assert.equal((await cp.readMetrics('m', '-', 1))[0].step, 1);
  const j = await cp.getJob('m');
  assert.deepEqual([j?.step, j?.loss, j?.accuracy, j?.imagesPerSec, j?.evalLoss, j?.evalAccuracy], [5, 0.5, 0.5, 105, 0.7, 0.8]);
});

test('events: blocking read wakes on append; checkpoint events set lastCheckpoint; lastEventId', async () => {
  const prefix = specPrefix('events');
  const cp = plane('events', prefix);
  const blocking = plane('events', prefix);
  await cp.createJob(spec(), { id: 'e' });
  assert.equal(await cp.lastEventId('e'), '0');
  const t0 = Date.now();
  const waiting = blocking.readEvents('e', '$', { blockMs: 5000 });
  await new Promise((r) => setTimeout(r, 50));
  await cp.appendEvent('e', { type: 'rank-started', rank: 1, workerId: 'w1', runId: 'r' });
  const got = await waiting;
  assert.ok(Date.now() - t0 < 2000);
  assert.deepEqual(got.map((e) => [e.type, e.rank, e.workerId, e.runId]), [['rank-started', 1, 'w1', 'r']]);
  const cpId = await cp.appendEvent('e', { type: 'checkpoint', rank: 0, step: 40, checkpointKey: 'checkpoints/e/40' });
  assert.equal((await cp.getJob('e'))?.lastCheckpoint, 'checkpoints/e/40');
  assert.equal(await cp.lastEventId('e'), cpId);
  assert.deepEqual((await cp.readEvents('e', got[0].id!)).map((e) => e.id), [cpId]);
  assert.deepEqual((await cp.readEvents('e', '-', 1)).map((e) => [e.type, e.id]), [['rank-started', got[0].id]]);
  assert.equal((await cp.readEvents('e', '0'))[1].checkpointKey, 'checkpoints/e/40');
  assert.deepEqual(await blocking.readEvents('e', cpId, { blockMs: 100 }), []);
});

test('dispatchIfState: commands and patch go out together, only from the expected state', async () => {
  const cp = plane('dispatch');
  await cp.createJob(spec(), { id: 'd' });
  const cmd = (jobId: string) => ({ type: 'cancel' as const, jobId });
  assert.deepEqual(await cp.dispatchIfState('d', 'scheduled', { state: 'running' }, [{ workerId: 'a', cmd: cmd('d') }]), { ok: false, previous: 'queued' });
  assert.deepEqual(await cp.peekCommands('a'), []);
  await cp.updateJob('d', { state: 'scheduled' });
  const r = await cp.dispatchIfState('d', 'scheduled', { state: 'running', startedAt: 9 }, [{ workerId: 'a', cmd: cmd('d') }, { workerId: 'b', cmd: cmd('d') }]);
  assert.deepEqual(r, { ok: true, previous: 'scheduled' });
  assert.deepEqual([await cp.peekCommands('a'), await cp.peekCommands('b')], [[cmd('d')], [cmd('d')]]);
  assert.deepEqual(await cp.getJob('d').then((j) => [j?.state, j?.startedAt]), ['running', 9]);
});
