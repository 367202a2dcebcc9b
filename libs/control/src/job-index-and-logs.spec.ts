// The per-state job sets and the job log streams of ControlPlane, on a real Redis.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ControlPlane, type ControlPlaneOptions } from './control-plane';
import { parseJobSpec, type JobSpec } from './job-spec';
import { specPrefix, specRedis, type SpecRedis } from './spec-redis';
import { JOB_STATES, type JobState } from './types';

let srv: SpecRedis;
const conns: Redis[] = [];
const prefixes = new Set<string>();
function plane(name: string, opts: ControlPlaneOptions = {}): ControlPlane {
  const prefix = specPrefix(name);
  prefixes.add(prefix);
  const r = new Redis(srv.url);
  conns.push(r);
  return new ControlPlane(r, { ...opts, prefix });
}
const spec = (): JobSpec => {
  const r = parseJobSpec({ model: { name: 'resnet18' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel: 2 }, batchSize: 8, steps: 10, optimizer: { type: 'sgd', lr: 0.1 } });
  assert.ok(r.spec);
  return r.spec;
};

before(async () => { srv = await specRedis(); });
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

/** The state sets, and (the independent reference) each record's state field read directly. */
async function setsAndRecords(cp: ControlPlane): Promise<{ sets: Record<string, string[]>; records: Record<string, string[]> }> {
  const sets: Record<string, string[]> = {};
  const records: Record<string, string[]> = {};
  for (const s of JOB_STATES) {
    const members = (await cp.redis.smembers(cp.keys.jobsInState(s))).sort();
    if (members.length) sets[s] = members;
  }
  for (const id of await cp.redis.zrange(cp.keys.jobs(), 0, -1)) {
    const s = await cp.redis.hget(cp.keys.job(id), 'state');
    if (s) (records[s] ??= []).push(id);
  }
  for (const ids of Object.values(records)) ids.sort();
  return { sets, records };
}

test('state sets follow createJob, transitionJob, dispatchIfState, updateJob and deleteJob', async () => {
  const cp = plane('state-sets');
  const expect = async (want: Partial<Record<JobState, string[]>>) => {
    const { sets, records } = await setsAndRecords(cp);
    assert.deepEqual(records, want, 'the records themselves');
    assert.deepEqual(sets, want, 'the sets agree with the records');
  };
  await cp.createJob(spec(), { id: 'a', now: 1 });
  await cp.createJob(spec(), { id: 'b', now: 2 });
  await cp.createJob(spec(), { id: 'c', now: 3 });
  await expect({ queued: ['a', 'b', 'c'] });
  assert.equal((await cp.transitionJob('a', ['queued'], { state: 'scheduled' })).ok, true);
  assert.equal((await cp.transitionJob('b', ['running'], { state: 'failed' })).ok, false, 'a refused CAS moves nothing');
  await expect({ queued: ['b', 'c'], scheduled: ['a'] });
  assert.equal((await cp.dispatchIfState('a', 'scheduled', { state: 'running', startedAt: 5 }, [{ workerId: 'w', cmd: { type: 'cancel', jobId: 'a' } }])).ok, true);
  assert.equal((await cp.dispatchIfState('b', 'scheduled', { state: 'running' }, [])).ok, false);
  await expect({ queued: ['b', 'c'], running: ['a'] });
  assert.deepEqual(await cp.peekCommands('w'), [{ type: 'cancel', jobId: 'a' }]);
  await cp.updateJob('b', { state: 'paused' });
  await cp.updateJob('c', { step: 3 });
  await cp.transitionJob('a', ['running'], { pauseRequested: 7 });
  await expect({ queued: ['c'], running: ['a'], paused: ['b'] });
  await cp.transitionJob('a', ['running'], { state: 'completed', finishedAt: 9 });
  await expect({ queued: ['c'], paused: ['b'], completed: ['a'] });
  assert.deepEqual(await cp.countJobsByState(), { queued: 1, scheduled: 0, running: 0, paused: 1, completed: 1, failed: 0, cancelled: 0 });
  assert.deepEqual((await cp.jobsInStates(['queued', 'paused'])).map((j) => j.id), ['c', 'b'], 'newest first');
  await cp.deleteJob('b');
  await expect({ queued: ['c'], completed: ['a'] });
});

test('listJobs by state reads the state set: newest first, paginated', async () => {
  const cp = plane('list-state');
  for (let i = 0; i < 6; i++) await cp.createJob(spec(), { id: `j${i}`, now: 100 + i });
  for (const i of [1, 2, 4]) await cp.transitionJob(`j${i}`, ['queued'], { state: 'cancelled' });
  assert.deepEqual((await cp.listJobs({ state: 'cancelled' })).map((j) => j.id), ['j4', 'j2', 'j1']);
  assert.deepEqual((await cp.listJobs({ state: 'cancelled', offset: 1, limit: 1 })).map((j) => j.id), ['j2']);
  assert.deepEqual((await cp.listJobs({ state: 'queued' })).map((j) => j.id), ['j5', 'j3', 'j0']);
  assert.deepEqual(await cp.listJobs({ state: 'running' }), []);
});

test('indexJobStates builds the sets of records written without them, once', async () => {
  const cp = plane('migrate');
  for (let i = 0; i < 7; i++) await cp.createJob(spec(), { id: `m${i}`, now: i });
  await cp.transitionJob('m0', ['queued'], { state: 'failed' });
  await cp.transitionJob('m3', ['queued'], { state: 'running' });
  // Records as an older coordinator left them: no sets (and a stray entry the rebuild must drop).
  await cp.redis.del(...JOB_STATES.map((s) => cp.keys.jobsInState(s)));
  await cp.redis.sadd(cp.keys.jobsInState('running'), 'm5');
  assert.equal(await cp.indexJobStates({ batch: 3 }), 7, 'batches of 3 cover all 7 jobs');
  const { sets, records } = await setsAndRecords(cp);
  assert.deepEqual(sets, records);
  assert.deepEqual(records, { queued: ['m1', 'm2', 'm4', 'm5', 'm6'], running: ['m3'], failed: ['m0'] });
  assert.equal(await cp.indexJobStates(), null, 'the marker stops a second rebuild');
  assert.equal(await cp.indexJobStates({ force: true }), 7);
});

test('the job-state scripts touch only the keys they declare (Redis Cluster can route them)', async () => {
  const cp = plane('declared-keys');
  await cp.createJob(spec(), { id: 'k', now: 1 });
  const client = new Redis(srv.url);
  conns.push(client);
  const monitor = await client.monitor();
  const evals: { keys: Set<string>; touched: string[] }[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (!source.includes('lua') && args[0]?.toLowerCase() === 'eval' && args[3]?.startsWith(cp.keys.prefix)) {
      evals.push({ keys: new Set(args.slice(3, 3 + Number(args[2]))), touched: [] });
    } else if (source.includes('lua') && evals.length && args[1]?.startsWith(cp.keys.prefix)) {
      evals[evals.length - 1].touched.push(args[1]);
    }
  });
  await cp.transitionJob('k', ['queued'], { state: 'scheduled' });
  await cp.dispatchIfState('k', 'scheduled', { state: 'running' }, [{ workerId: 'w1', cmd: { type: 'cancel', jobId: 'k' } }, { workerId: 'w2', cmd: { type: 'pause', jobId: 'k' } }]);
  await cp.transitionJob('k', ['running'], { step: 4 });
  await cp.indexJobStates({ force: true });
  await new Promise((r) => setTimeout(r, 200));
  monitor.disconnect();
  assert.equal(evals.length, 4, 'four scripts ran');
  for (const e of evals) {
    assert.ok(e.touched.length > 0);
    for (const k of e.touched) assert.ok(e.keys.has(k), `a script touched ${k}, which is not among its KEYS ${[...e.keys].join(' ')}`);
  }
  assert.ok(evals[1].touched.includes(cp.keys.inbox('w2')), 'the inboxes are declared keys');
});

test('logs: append, read with cursor, limit and rank filter; the stream stays within its bound', async () => {
  const cp = plane('logs', { logsMaxLen: 200 });
  await cp.createJob(spec(), { id: 'l' });
  for (let i = 0; i < 10; i++) await cp.appendLog('l', { rank: i % 2, level: i === 9 ? 'error' : 'info', workerId: `w${i % 2}`, msg: `line ${i}`, ts: 1000 + i });
  const all = await cp.readLogs('l');
  assert.deepEqual(all.lines.map((l) => [l.msg, l.rank, l.level, l.workerId, l.ts]).slice(8), [['line 8', 0, 'info', 'w0', 1008], ['line 9', 1, 'error', 'w1', 1009]]);
  assert.equal(all.next, all.lines[9].id);
  const page = await cp.readLogs('l', { after: all.lines[2].id, limit: 3 });
  assert.deepEqual(page.lines.map((l) => l.msg), ['line 3', 'line 4', 'line 5']);
  assert.equal(page.next, all.lines[5].id);
  const rank1 = await cp.readLogs('l', { rank: 1, limit: 2 });
  assert.deepEqual(rank1.lines.map((l) => l.msg), ['line 1', 'line 3']);
  assert.deepEqual((await cp.readLogs('l', { rank: 1, after: rank1.next })).lines.map((l) => l.msg), ['line 5', 'line 7', 'line 9']);
  assert.deepEqual(await cp.readLogs('l', { after: all.next }), { lines: [], next: all.next }, 'nothing new: the cursor stays');
  assert.deepEqual(await cp.readLogs('nope'), { lines: [], next: '0' });

  // Approximate trimming removes whole stream nodes: the bound is logsMaxLen plus at most one node.
  const [, nodeEntries] = (await cp.redis.config('GET', 'stream-node-max-entries')) as [string, string];
  for (let i = 0; i < 990; i++) await cp.appendLog('l', { rank: 0, level: 'debug', workerId: 'w0', msg: `more ${i}` });
  const len = await cp.redis.xlen(cp.keys.logs('l'));
  assert.ok(len >= 200 && len <= 200 + Number(nodeEntries), `${len} lines kept, bound 200 (+ ${nodeEntries} per node)`);
  const tail = await cp.readLogs('l', { limit: 10_000 });
  assert.equal(tail.lines.at(-1)?.msg, 'more 989', 'the newest lines are the ones kept');
  await cp.deleteJob('l');
  assert.equal(await cp.redis.exists(cp.keys.logs('l')), 0, 'deleting the job deletes its logs');
});
