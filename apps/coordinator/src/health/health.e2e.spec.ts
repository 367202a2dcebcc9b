// The probes against a real Redis and a real Swift S3 (@tensorfleet/infra testServices()),
// then against an S3 endpoint where nothing listens: liveness must stay 200, readiness 503 naming S3.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { testId, testServices, type Services } from '@tensorfleet/infra';
import { startCoordinator, type RunningCoordinator } from '../bootstrap';

let services: Services;

async function boot(s3: Services['s3']): Promise<RunningCoordinator> {
  return startCoordinator({ port: 0, host: '127.0.0.1', redisUrl: services.redisUrl, s3, prefix: testId('health'), quiet: true });
}

async function get(coord: RunningCoordinator, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(coord.url + path);
  return { status: res.status, body: await res.json() };
}

/** A TCP port that was just free: bound, then released, so connecting to it is refused. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('health probes', () => {
  before(async () => { services = await testServices(); });
  after(async () => { await services.stop(); });

  test('with Redis and S3 up: /healthz 200 and /readyz 200 with both checks ok', async () => {
    const coord = await boot(services.s3);
    try {
      assert.deepEqual(await get(coord, '/healthz'), { status: 200, body: { ok: true } });
      const ready = await get(coord, '/readyz');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.ready, true);
      assert.equal(ready.body.redis.ok, true);
      assert.equal(ready.body.s3.ok, true);
      assert.equal(typeof ready.body.redis.ms, 'number');
    } finally {
      await coord.close();
    }
  });

  test('with S3 down: /healthz stays 200, /readyz is 503 and says S3 failed while Redis is fine', async () => {
    const coord = await boot({ ...services.s3, endPoint: '127.0.0.1', port: await closedPort(), useSSL: false });
    try {
      assert.equal((await get(coord, '/healthz')).status, 200);
      const ready = await get(coord, '/readyz');
      assert.equal(ready.status, 503);
      assert.equal(ready.body.ready, false);
      assert.equal(ready.body.redis.ok, true);
      assert.equal(ready.body.s3.ok, false);
      assert.match(ready.body.s3.error, /S3 did not answer/);
    } finally {
      await coord.close();
    }
  });
});
