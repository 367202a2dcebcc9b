// An S3 outage against a real Swift: the test stops its proxy (connections refused) and
// starts it again. Its own Swift, so no other spec loses S3 meanwhile.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startSwift, testId, type RunningSwift } from '@tensorfleet/infra';
import { DataError } from '../errors';
import { ObjectStore } from './object-store';
import { RetryPolicy } from './retry-policy';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('S3 outage (real Swift, proxy stopped and started)', { timeout: 5 * 60_000 }, () => {
  let swift: RunningSwift;
  const bucket = testId('s3-outage');
  const lines: string[] = [];
  const storeWith = (budgetMs: number) => new ObjectStore(swift.config, { retry: new RetryPolicy({ budgetMs, baseMs: 100, maxMs: 1000, log: (l) => lines.push(l) }) });

  before(async () => {
    swift = await startSwift({ label: 's3-outage' });
    await storeWith(10_000).ensureBucket(bucket);
  });
  after(async () => {
    await swift?.startProxy().catch(() => undefined);
    await swift?.stop();
  });

  it('a get and a put started during the outage succeed once the proxy is back, logging each retry', async () => {
    const store = storeWith(60_000);
    const before = randomBytes(200_000);
    const during = randomBytes(300_000);
    await store.putObject(bucket, 'outage/before', before);
    lines.length = 0;
    await swift.stopProxy();
    const settled: string[] = [];
    const get = store.getBuffer(bucket, 'outage/before').finally(() => settled.push('get'));
    const put = store.putObject(bucket, 'outage/during', during).finally(() => settled.push('put'));
    await sleep(3000);
    assert.deepEqual(settled, [], 'nothing can succeed while the proxy is down');
    assert.ok(lines.some((l) => /^get .*outage\/before failed \(.*ECONNREFUSED.*\), attempt \d+; retrying in \d+ ms/.test(l)), `no retry line for the get in:\n${lines.join('\n')}`);
    assert.ok(lines.some((l) => /^put .*outage\/during failed .*attempt \d+; retrying in/.test(l)), 'no retry line for the put');
    await swift.startProxy();
    assert.ok((await get).equals(before), 'the get returns the object');
    await put;
    assert.ok((await store.getBuffer(bucket, 'outage/during')).equals(during), 'the put stored the whole object');
  });

  it('an outage longer than the budget gives S3_UNREACHABLE within the budget, saying what to check', async () => {
    const store = storeWith(2000);
    await swift.stopProxy();
    try {
      lines.length = 0;
      const t0 = Date.now();
      await assert.rejects(store.getBuffer(bucket, 'outage/before'), (e) => {
        assert.ok(e instanceof DataError && e.code === 'S3_UNREACHABLE', String(e));
        assert.match(e.message, /get .*outage\/before: S3 at http:\/\/127\.0\.0\.1:\d+ still failing after \d+ attempts/);
        assert.match(e.message, /Check that the S3 server is up .* raise FLEET_S3_RETRY_BUDGET_MS \(now 2000\)/);
        return true;
      });
      const took = Date.now() - t0;
      assert.ok(took <= 2000 + 500, `gave up after ${took} ms with a 2000 ms budget`);
      assert.ok(took >= 500, `gave up after only ${took} ms`);
      assert.ok(lines.length >= 3, `${lines.length} retries logged`);
      // The loader path: a dataset listing fails the same way, not with an empty list.
      await assert.rejects(store.list(bucket, 'outage/'), { code: 'S3_UNREACHABLE' });
    } finally {
      await swift.startProxy();
    }
  });

  it('a 5xx answer (the object server down behind a live proxy) is retried until the server is back', async () => {
    const store = storeWith(60_000);
    const body = randomBytes(50_000);
    await store.putObject(bucket, 'outage/5xx', body);
    lines.length = 0;
    await swift.stopObjectServer();
    let settled = false;
    const get = store.getBuffer(bucket, 'outage/5xx').finally(() => (settled = true));
    try {
      await sleep(2500);
      assert.equal(settled, false, 'the get cannot succeed without the object server');
      assert.ok(lines.length >= 1 && lines.every((l) => /^get .*outage\/5xx failed \(.*(503|ServiceUnavailable|SlowDown|InternalError|Retryable HTTP status).*\), attempt \d+/.test(l)), `retries should name the 5xx:\n${lines.join('\n')}`);
    } finally {
      await swift.startObjectServer();
    }
    assert.ok((await get).equals(body));
  });

  it('a 4xx answer is not retried: NoSuchKey, a missing bucket, bad credentials', async () => {
    const store = storeWith(60_000);
    lines.length = 0;
    const t0 = Date.now();
    await assert.rejects(store.getBuffer(bucket, 'outage/never-written'), { code: 'NoSuchKey' });
    assert.equal(await store.stat(bucket, 'outage/never-written'), null);
    await assert.rejects(store.list('tf-no-such-bucket-s3-outage', ''), (e) => (e as { code?: string }).code === 'NoSuchBucket');
    const wrongKey = new ObjectStore({ ...swift.config, secretKey: 'not-the-secret' }, { retry: new RetryPolicy({ budgetMs: 60_000, log: (l) => lines.push(l) }) });
    await assert.rejects(wrongKey.putObject(bucket, 'outage/denied', Buffer.from('x')), (e) => /SignatureDoesNotMatch|AccessDenied/.test(String((e as { code?: string }).code)));
    assert.deepEqual(lines, [], 'no retries for 4xx answers');
    assert.ok(Date.now() - t0 < 5000, 'answered at once');
  });
});
