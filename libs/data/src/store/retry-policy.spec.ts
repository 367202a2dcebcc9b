// The policy's arithmetic and its settings; what it does against a real S3 outage is in s3-outage.spec.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DataError } from '../errors';
import { DEFAULT_RETRY, RetryPolicy, isTransient, retrySettingsFromEnv } from './retry-policy';

test('delays double from base up to max, jittered to [½, 1] of the nominal delay', () => {
  const lo = new RetryPolicy({ baseMs: 100, maxMs: 1000, random: () => 0 });
  const hi = new RetryPolicy({ baseMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4, 5, 6, 40].map((n) => lo.delayMs(n)), [50, 100, 200, 400, 500, 500, 500]);
  assert.deepEqual([1, 2, 3, 4, 5, 6, 40].map((n) => hi.delayMs(n)), [100, 200, 400, 800, 1000, 1000, 1000]);
});

test('settings come from FLEET_S3_RETRY_*; a bad value names the variable', () => {
  assert.deepEqual(retrySettingsFromEnv({}), DEFAULT_RETRY);
  assert.deepEqual(retrySettingsFromEnv({ FLEET_S3_RETRY_BUDGET_MS: '5000', FLEET_S3_RETRY_BASE_MS: '50', FLEET_S3_RETRY_MAX_MS: '800' }), { budgetMs: 5000, baseMs: 50, maxMs: 800 });
  const bad = (env: Record<string, string>, re: RegExp) => assert.throws(() => retrySettingsFromEnv(env), (e) => e instanceof DataError && e.code === 'BAD_OPTIONS' && re.test(e.message));
  bad({ FLEET_S3_RETRY_BUDGET_MS: '10s' }, /FLEET_S3_RETRY_BUDGET_MS='10s' must be a whole number of milliseconds/);
  bad({ FLEET_S3_RETRY_BASE_MS: '-5' }, /FLEET_S3_RETRY_BASE_MS/);
  bad({ FLEET_S3_RETRY_BASE_MS: '0' }, /FLEET_S3_RETRY_BASE_MS must be at least 1 ms/);
  bad({ FLEET_S3_RETRY_BASE_MS: '500', FLEET_S3_RETRY_MAX_MS: '100' }, /FLEET_S3_RETRY_MAX_MS \(100\) must not be below FLEET_S3_RETRY_BASE_MS \(500\)/);
});

test('transient: refused/reset connections, timeouts, 5xx, SlowDown; never 4xx or our own errors', () => {
  const err = (props: Record<string, unknown>, message = '') => Object.assign(new Error(message), props);
  for (const e of [err({ code: 'ECONNREFUSED' }), err({ code: 'ECONNRESET' }), err({ code: 'ETIMEDOUT' }), err({ code: 'SlowDown' }), err({ code: 'InternalError' }),
    err({ code: 'ServiceUnavailable' }), err({}, 'socket hang up'), err({}, 'Request failed after 0 retries: Error: Retryable HTTP status: 502'), err({ statusCode: 503 }),
    new AggregateError([err({ code: 'ECONNREFUSED' })], '')]) {
    assert.equal(isTransient(e), true, `${(e as { code?: string }).code ?? ''} ${e.message}`);
  }
  for (const e of [err({ code: 'NoSuchKey' }), err({ code: 'NotFound' }), err({ code: 'AccessDenied' }), err({ code: 'SignatureDoesNotMatch' }), err({ code: 'NoSuchBucket' }),
    err({ statusCode: 404 }, 'socket hang up'), new DataError('S3_UNREACHABLE', 'ECONNREFUSED'), new TypeError('x is not a function'), null, 'ECONNRESET']) {
    assert.equal(isTransient(e), false, String((e as { code?: string })?.code ?? e));
  }
});

test('run(): retries transient failures with one log line each, throws others at once, S3_UNREACHABLE when the budget is spent', async () => {
  const lines: string[] = [];
  const policy = new RetryPolicy({ budgetMs: 400, baseMs: 20, maxMs: 40, log: (l) => lines.push(l), endpoint: 'S3 at http://x:1' });
  let calls = 0;
  assert.equal(await policy.run('get b/k', async () => (++calls < 3 ? Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })) : 'ok')), 'ok');
  assert.equal(calls, 3);
  assert.equal(lines.length, 2);
  assert.match(lines[0], /^get b\/k failed \(connect ECONNREFUSED\), attempt 1; retrying in \d+ ms \(0\.\d s of the retry budget left\)$/);

  lines.length = 0;
  await assert.rejects(policy.run('get b/k', async () => Promise.reject(Object.assign(new Error('no such key'), { code: 'NoSuchKey' }))), { code: 'NoSuchKey' });
  assert.equal(lines.length, 0, 'a 4xx is not retried');

  const t0 = Date.now();
  await assert.rejects(policy.run('put b/k', async () => Promise.reject(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))),
    (e) => e instanceof DataError && e.code === 'S3_UNREACHABLE' && /put b\/k: S3 at http:\/\/x:1 still failing after \d+ attempts/.test(e.message) && /FLEET_S3_RETRY_BUDGET_MS \(now 400\)/.test(e.message));
  assert.ok(Date.now() - t0 <= 400 + 100, `gave up after ${Date.now() - t0} ms, the budget is 400`);
  assert.ok(lines.length >= 5, `${lines.length} retries in 400 ms of 20..40 ms delays`);
});
