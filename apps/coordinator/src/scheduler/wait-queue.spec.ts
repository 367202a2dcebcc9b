// The wait queue and the scheduler's use of it against a real Redis: the order of the jobs
// ahead, stale entries, and that a waiting job's claim loop costs the same with a long history.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ControlPlane, parseJobSpec, type JobSpec } from '@tensorfleet/control';
import { startRedis, testId } from '@tensorfleet/infra';
import { GangScheduler } from './gang-scheduler';
import { WaitQueue } from './wait-queue';

let url: string;
let stopRedis: () => Promise<void> = async () => undefined;
const conns: Redis[] = [];

before(async () => {
  // A Redis of its own: the command counts below must not include other specs' commands.
  const r = await startRedis({ label: 'wait-queue-spec' });
  url = r.url;
  stopRedis = () => r.stop();
});
after(async () => {
  for (const c of conns) c.disconnect();
  await stopRedis();
});

function plane(): ControlPlane {
  const r = new Redis(url);
  conns.push(r);
  return new ControlPlane(r, { prefix: testId('wq') });
}

function spec(dataParallel: number, priority = 0): JobSpec {
  const r = parseJobSpec({ model: { name: 'resnet18' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel }, batchSize: 2, steps: 5, priority, optimizer: { type: 'sgd', lr: 0.1 } });
  assert.ok(r.spec);
  return r.spec;
}

test('ahead: every higher priority, and older jobs of the same priority only once reserved', async () => {
  const control = plane();
  const q = new WaitQueue(control);
  const t = 1_700_000_000_000;
  const job = async (id: string, size: number, priority: number, createdAt: number) => {
    const j = await control.createJob(spec(size, priority), { id, now: createdAt });
    await q.add(j);
    return j;
  };
  await job('high-new', 4, 10, t + 50);
  await job('high-old', 2, 10, t + 1);
  await job('same-old', 1, 0, t);
  await job('same-older', 3, 0, t - 10);
  const me = await job('me', 2, 0, t + 20);
  await job('same-newer', 1, 0, t + 30);
  await job('low', 1, -5, t - 100);
  // Reservations of jobs created before t - 5 only: same-older (t - 10) counts, same-old (t) does not.
  const ahead = await q.ahead(me, t - 5);
  assert.deepEqual(ahead.map((e) => [e.id, e.size, e.priority]), [['high-old', 2, 10], ['high-new', 4, 10], ['same-older', 3, 0]]);
  // Every older one of the same priority once all have waited long enough; never itself or newer ones.
  assert.deepEqual((await q.ahead(me, t + 1000)).map((e) => e.id), ['high-old', 'high-new', 'same-older', 'same-old']);
  assert.deepEqual((await q.ahead(await control.getJob('high-old') as never, t + 1000)).map((e) => e.id), []);
});

test('stillQueued drops the entry of a job that stopped waiting', async () => {
  const control = plane();
  const q = new WaitQueue(control);
  const a = await control.createJob(spec(1, 5), { id: 'a' });
  await q.add(a);
  const me = await control.createJob(spec(1), { id: 'me' });
  const [entry] = await q.ahead(me, Date.now());
  assert.equal(await q.stillQueued(entry), true);
  await control.transitionJob('a', ['queued'], { state: 'cancelled' });
  assert.equal(await q.stillQueued(entry), false);
  assert.deepEqual(await q.ahead(me, Date.now()), []);
  assert.equal(await control.redis.zcard(control.keys.waiting()), 0);
});

/** HGETALL/HMGET/HGET calls and all commands Redis ran while `fn` ran. */
async function counted(redis: Redis, fn: () => Promise<void>): Promise<{ reads: number; total: number }> {
  const stats = async () => {
    const info = await redis.info('commandstats');
    const calls = (cmd: string) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
    const total = (info.match(/calls=(\d+)/g) ?? []).reduce((s, m) => s + Number(m.slice('calls='.length)), 0);
    return { reads: calls('hgetall') + calls('hmget') + calls('hget'), total };
  };
  const s0 = await stats();
  await fn();
  const s1 = await stats();
  return { reads: s1.reads - s0.reads, total: s1.total - s0.total };
}

test('a waiting job reads the same with 10 and with 2,000 finished jobs in history', async () => {
  const measure = async (history: number) => {
    const control = plane();
    const q = new WaitQueue(control);
    for (let i = 0; i < history; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, history - i) }, async (_, k) => {
        const j = await control.createJob(spec(1), { id: `done-${i + k}`, now: 1000 + i + k });
        await control.transitionJob(j.id, ['queued'], { state: 'completed' });
      }));
    }
    await control.registerWorker({ id: 'w', host: 'h', pid: 1, backend: 'cpu', device: 'cpu', address: { hostId: 'h', tcp: 'tcp://w', ipc: null } });
    await control.heartbeat('w', 60_000);
    // A higher-priority job that fits (1 rank) is waiting, so every attempt of `me` is outranked.
    await q.add(await control.createJob(spec(1, 50), { id: 'first' }));
    await q.add(await control.createJob(spec(1), { id: 'me' }));
    const r = new Redis(url);
    conns.push(r);
    const g = new GangScheduler(new ControlPlane(r, { prefix: control.keys.prefix }), { claimBackoffMs: 25, claimMaxBackoffMs: 25, followPollMs: 30, staleBusyMs: 60_000, reserveAfterMs: 120_000 });
    let attempts = 0;
    const c = await counted(control.redis, async () => {
      const run = g.run('me');
      const t0 = Date.now();
      while (Date.now() - t0 < 500) await new Promise((res) => setTimeout(res, 25));
      g.close();
      assert.equal(await run, 'shutdown');
      attempts = Math.round((Date.now() - t0) / 25);
    });
    assert.equal((await control.getJob('me'))!.state, 'queued', 'outranked: it must not start');
    return { ...c, attempts };
  };
  const small = await measure(10);
  const large = await measure(2000);
  // Listing the history would be >= 2,000 reads per attempt; the wait queue reads O(jobs ahead).
  assert.ok(large.reads < 5 * large.attempts + 50, `reads with 2,000 jobs: ${large.reads} over ~${large.attempts} attempts`);
  assert.ok(large.total < 3 * small.total + 200, `commands: ${small.total} with 10 jobs, ${large.total} with 2,000`);
});
