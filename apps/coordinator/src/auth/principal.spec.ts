import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseJobSpec, parseScope } from '@tensorfleet/control';
import { mayAccess, pathErrors, type Principal } from './principal';

const teamA: Principal = { name: 'team-a', access: 'write', scopes: ['data/team-a', 'scratch-a/*'].map(parseScope) };
const admin: Principal = { access: 'write', scopes: null };
const spec = (dataset: object, checkpoint?: object) => parseJobSpec({
  model: { name: 'resnet18' }, dataset, parallelism: { dataParallel: 1 }, batchSize: 8, epochs: 1, optimizer: { type: 'sgd', lr: 0.1 }, ...(checkpoint ? { checkpoint } : {}),
}).spec!;

test('a scoped token names only its datasets and its buckets for checkpoints', () => {
  assert.deepEqual(pathErrors(teamA, spec({ bucket: 'data', prefix: 'team-a/cifar' }, { bucket: 'scratch-a' })), []);
  // the checkpoints default to the dataset's bucket, which the scope names
  assert.deepEqual(pathErrors(teamA, spec({ bucket: 'data', prefix: 'team-a/cifar' })), []);
  assert.deepEqual(pathErrors(teamA, spec({ bucket: 'data', prefix: 'team-b/cifar' })).map((e) => e.field), ['dataset.prefix']);
  assert.deepEqual(pathErrors(teamA, spec({ bucket: 'data', prefix: 'team-ab' })).map((e) => e.field), ['dataset.prefix']);
  const both = pathErrors(teamA, spec({ bucket: 'scratch-b', prefix: 'x' }));
  assert.deepEqual(both.map((e) => e.field), ['dataset.prefix', 'checkpoint.bucket']);
  assert.match(both[1].message, /may not write to bucket scratch-b; its buckets: data, scratch-a/);
  assert.deepEqual(pathErrors(teamA, spec({ bucket: 'data', prefix: 'team-a' }, { bucket: 'data-b' })).map((e) => e.field), ['checkpoint.bucket']);
  assert.deepEqual(pathErrors(admin, spec({ bucket: 'anything', prefix: 'x' })), []);
  assert.deepEqual(pathErrors(null, spec({ bucket: 'anything', prefix: 'x' })), []);
});

test('a scoped token sees only its name\'s jobs; unscoped ones and an open API see all', () => {
  assert.ok(mayAccess(teamA, { owner: 'team-a' }));
  assert.ok(!mayAccess(teamA, { owner: 'team-b' }));
  assert.ok(!mayAccess(teamA, {}), 'a job of an unnamed token is not team-a\'s');
  assert.ok(mayAccess(admin, { owner: 'team-b' }) && mayAccess(null, {}));
});
