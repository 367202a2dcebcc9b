// Bearer tokens on a coordinator booted against a real Redis and Swift S3, over real HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { testId, testServices, type Services } from '@tensorfleet/infra';
import { startCoordinator, type RunningCoordinator } from '../bootstrap';
import { coordinatorOptionsFromEnv, CoordinatorConfigError, resolveCoordinatorConfig } from '../config/coordinator-config';

// The built CLI (apps/cli/dist/main.js), run as its own process like a user would.
const CLI = join(__dirname, '..', '..', '..', 'cli', 'dist', 'main.js');
const WRITE = 'write-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
let services: Services;
let coord: RunningCoordinator;

async function call(method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(coord.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

describe('API bearer tokens', () => {
  before(async () => {
    services = await testServices();
    const env = { REDIS_URL: services.redisUrl, TF_S3: JSON.stringify(services.s3), FLEET_API_TOKEN: WRITE, FLEET_API_READ_TOKEN: READ };
    coord = await startCoordinator({ ...coordinatorOptionsFromEnv(env), port: 0, host: '127.0.0.1', prefix: testId('auth'), quiet: true });
  });
  after(async () => {
    await coord.close();
    await services.stop();
  });

  test('no token or an unknown one is a 401 that says what to send', async () => {
    const none = await call('GET', '/jobs');
    assert.equal(none.status, 401);
    assert.match(none.body.message, /Authorization: Bearer/);
    assert.equal((await call('GET', '/jobs', 'not-a-token-of-this-cluster')).status, 401);
    assert.equal((await call('POST', '/jobs', undefined, {})).status, 401);
  });

  test('a read-only token reads (200) but a write is a 403', async () => {
    const jobs = await call('GET', '/jobs', READ);
    assert.equal(jobs.status, 200);
    assert.ok(Array.isArray(jobs.body));
    assert.equal((await call('GET', '/workers', READ)).status, 200);
    const write = await call('POST', '/jobs', READ, {});
    assert.equal(write.status, 403);
    assert.match(write.body.message, /read-only/);
  });

  test('a write token passes the guard: an empty spec reaches validation (400), not 401/403', async () => {
    assert.equal((await call('GET', '/jobs', WRITE)).status, 200);
    assert.equal((await call('POST', '/jobs', WRITE, {})).status, 400);
  });

  test('reads may carry the token as ?access_token= (the dashboard\'s event stream); writes may not', async () => {
    assert.equal((await call('GET', `/jobs?access_token=${READ}`)).status, 200);
    assert.equal((await call('GET', '/jobs?access_token=not-a-token-of-this-cluster')).status, 401);
    assert.equal((await call('POST', `/jobs?access_token=${WRITE}`, undefined, {})).status, 401);
  });

  // That the page then asks for the token and sends it is test/src/e2e/dashboard.test.ts, in a browser.
  test('the dashboard page and its assets are open without a token', async () => {
    const res = await fetch(coord.url + '/');
    assert.equal(res.status, 200);
    assert.match(await res.text(), /<script src="assets\/main\.js">/);
    assert.equal((await fetch(coord.url + '/assets/main.js')).status, 200);
    assert.equal((await fetch(coord.url + '/assets/style.css')).status, 200);
  });

  test('health probes stay open without a token', async () => {
    assert.equal((await call('GET', '/healthz')).status, 200);
    assert.equal((await call('GET', '/readyz')).status, 200);
  });

  test('the fleet CLI, a separate process, sends FLEET_API_TOKEN: with it `fleet jobs` lists, without it fails', async () => {
    // Asynchronous on purpose: the coordinator answering the CLI runs in this very process.
    const fleet = (token: string) => new Promise<{ code: number; out: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'jobs', '--json', '--coordinator', coord.url], { env: { ...process.env, FLEET_API_TOKEN: token }, timeout: 30_000 },
        (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }));
    });
    const ok = await fleet(READ);
    assert.equal(ok.code, 0, ok.out);
    assert.ok(Array.isArray(JSON.parse(ok.out)));
    const denied = await fleet('');
    assert.notEqual(denied.code, 0);
    assert.match(denied.out, /401|bearer token/i);
  });

  test('a token too short to be safe is refused at start, naming the field', () => {
    assert.throws(() => resolveCoordinatorConfig({ redisUrl: services.redisUrl, s3: services.s3, apiTokens: [{ token: 'short', access: 'write' }] }),
      (e: Error) => e instanceof CoordinatorConfigError && /apiTokens\[0\]\.token/.test(e.message));
  });
});
