// The history bound against a real Redis: the oldest finished jobs go, active ones stay.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ControlPlane, parseJobSpec, type JobState } from '@tensorfleet/control';
import { startRedis, testId } from '@tensorfleet/infra';
import { trimJobHistory } from './job-history';

let url: string;
let stopRedis: () => Promise<void> = async () => undefined;
let redis: Redis;

before(async () => {
  if (process.env.TF_TEST_REDIS_URL) url = process.env.TF_TEST_REDIS_URL;
  else {
    const r = await startRedis({ label: 'history-spec' });
    url = r.url;
    stopRedis = () => r.stop();
  }
  redis = new Redis(url);
});
after(async () => {
  const keys = await redis.keys('tf-history-*');
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  await stopRedis();
});

test('trimJobHistory deletes the oldest finished jobs beyond the bound and keeps active ones', async () => {
  const control = new ControlPlane(redis, { prefix: testId('history') });
  const r = parseJobSpec({ model: { name: 'resnet18' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel: 1 }, batchSize: 2, steps: 5, optimizer: { type: 'sgd', lr: 0.1 } });
  assert.ok(r.spec);
  // 12 jobs, oldest first: the 2nd and 5th are still active.
  const states: JobState[] = ['completed', 'running', 'failed', 'cancelled', 'queued', 'completed', 'completed', 'completed', 'completed', 'completed', 'completed', 'completed'];
  for (const [i, state] of states.entries()) {
    await control.createJob(r.spec, { id: `j${i}`, now: 1000 + i });
    await control.appendEvent(`j${i}`, { type: 'job-state', rank: -1, state });
    if (state !== 'queued') await control.transitionJob(`j${i}`, ['queued'], { state });
  }
  assert.equal(await trimJobHistory(control, 20), 0, 'under the bound: nothing');
  assert.equal(await trimJobHistory(control, 8, 2), 4);
  const left = await redis.zrange(control.keys.jobs(), 0, -1);
  assert.deepEqual(left, ['j1', 'j4', 'j6', 'j7', 'j8', 'j9', 'j10', 'j11'], 'the 4 oldest finished ones went, the active ones stayed');
  assert.equal(await control.getJob('j0'), null);
  assert.equal(await redis.exists(control.keys.events('j0')), 0, 'its streams went too');
  // A bound below the active jobs keeps the active ones.
  assert.equal(await trimJobHistory(control, 0), 6);
  assert.deepEqual(await redis.zrange(control.keys.jobs(), 0, -1), ['j1', 'j4']);
  await assert.rejects(trimJobHistory(control, -1), /non-negative/);
});
