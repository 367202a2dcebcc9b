// Tokens scoped to object-store paths, on a coordinator booted against a real Redis and Swift
// S3, over real HTTP: what one team's token can neither name, see nor control of another's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectStore, writeManifest } from '@tensorfleet/data';
import { testId, testServices, type Services } from '@tensorfleet/infra';
import { startCoordinator, type RunningCoordinator } from '../bootstrap';

const A = 'team-a-token-0123456789abcdef';
const B = 'team-b-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';
let services: Services;
let coord: RunningCoordinator;
let data: string;
let scratchB: string;

async function call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(coord.url + path, {
    method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const spec = (prefix: string, over: Record<string, unknown> = {}) => ({
  model: { name: 'resnet8', numClasses: 4 }, dataset: { bucket: data, prefix }, parallelism: { dataParallel: 1 },
  batchSize: 4, steps: 10, optimizer: { type: 'sgd', lr: 0.1 }, ...over,
});

describe('API tokens scoped to bucket/prefix patterns', () => {
  before(async () => {
    services = await testServices();
    data = testId('scoped');
    scratchB = testId('scratchb');
    const store = new ObjectStore(services.s3);
    for (const b of [data, scratchB]) await store.ensureBucket(b);
    for (const p of ['team-a/ds', 'team-b/ds']) {
      await writeManifest(store, data, p, {
        version: 1, name: p, classes: [0, 1, 2, 3].map((id) => ({ id, name: `c${id}` })),
        splits: { train: { samples: 64, shards: [{ key: `${p}/train-0.tar`, samples: 64, bytes: 1 }] } },
        mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25],
      });
    }
    coord = await startCoordinator({
      redisUrl: services.redisUrl, s3: services.s3, port: 0, host: '127.0.0.1', prefix: testId('scopedc'), quiet: true,
      apiTokens: [
        { name: 'team-a', token: A, access: 'write', scopes: [`${data}/team-a`] },
        { name: 'team-b', token: B, access: 'write', scopes: [`${data}/team-b/*`, `${scratchB}/*`] },
        { token: ADMIN, access: 'write' },
      ],
    });
  });
  after(async () => {
    await coord.close();
    await services.stop();
  });

  test('token A cannot submit a job reading B\'s prefix, directly or through "..": 403 / 400 naming the field, nothing queued', async () => {
    const foreign = await call('POST', '/jobs', A, spec('team-b/ds'));
    assert.equal(foreign.status, 403);
    assert.deepEqual(foreign.body.fields, ['dataset.prefix']);
    assert.match(foreign.body.message[0], /outside what token team-a may read/);
    const dotdot = await call('POST', '/jobs', A, spec('team-a/../team-b/ds'));
    assert.equal(dotdot.status, 400);
    assert.deepEqual(dotdot.body.fields, ['dataset.prefix']);
    // A's pattern is whole segments: team-a does not cover team-ab.
    assert.equal((await call('POST', '/jobs', A, spec('team-ab/ds'))).status, 403);
    assert.deepEqual((await call('GET', '/jobs', ADMIN)).body, []);
  });

  test('token A cannot point its checkpoints at B: not B\'s bucket (403), and no spec field names a checkpoint key (400)', async () => {
    const bucket = await call('POST', '/jobs', A, spec('team-a/ds', { checkpoint: { bucket: scratchB } }));
    assert.equal(bucket.status, 403);
    assert.deepEqual(bucket.body.fields, ['checkpoint.bucket']);
    const key = await call('POST', '/jobs', A, spec('team-a/ds', { checkpoint: { prefix: 'checkpoints/job-of-b' } }));
    assert.equal(key.status, 400);
    assert.deepEqual(key.body.fields, ['checkpoint.prefix']);
    const intoCheckpoints = await call('POST', '/jobs', B, spec('checkpoints/job-x'));
    assert.equal(intoCheckpoints.status, 400, 'no dataset may be read from the jobs\' checkpoint folders');
  });

  test('each token sees, reads and controls only its own jobs; an unscoped token sees all', async () => {
    const a = await call('POST', '/jobs', A, spec('team-a/ds'));
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(a.body.owner, 'team-a');
    const b = await call('POST', '/jobs', B, spec('team-b/ds', { checkpoint: { bucket: scratchB } }));
    assert.equal(b.status, 201, JSON.stringify(b.body));
    const idB = b.body.id;

    assert.deepEqual((await call('GET', '/jobs', A)).body.map((j: any) => j.id), [a.body.id]);
    assert.deepEqual((await call('GET', '/jobs?state=queued', B)).body.map((j: any) => j.id), [idB]);
    assert.deepEqual((await call('GET', '/jobs', ADMIN)).body.map((j: any) => j.id).sort(), [a.body.id, idB].sort());
    for (const [method, path] of [['GET', ''], ['GET', '/checkpoints'], ['GET', '/metrics'], ['GET', '/logs'], ['POST', '/cancel'], ['POST', '/pause'], ['POST', '/resume']]) {
      const r = await call(method, `/jobs/${idB}${path}`, A);
      assert.equal(r.status, 404, `${method} /jobs/:id${path} of B's job with A's token: ${r.status} ${JSON.stringify(r.body)}`);
    }
    assert.equal((await call('GET', `/jobs/${idB}`, B)).body.state, 'queued', 'A\'s attempts changed nothing');
    assert.equal((await call('POST', `/jobs/${idB}/cancel`, B)).body.state, 'cancelled');
    assert.equal((await call('POST', `/jobs/${a.body.id}/cancel`, ADMIN)).body.state, 'cancelled');
  });
});
