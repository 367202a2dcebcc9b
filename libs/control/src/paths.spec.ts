import { test } from 'node:test';
import assert from 'node:assert/strict';
import { datasetPrefixProblem, formatScope, parseScope, prefixProblem, scopeCovers } from './paths';
import { parseJobSpec } from './job-spec';

test('prefixes are plain relative key prefixes', () => {
  for (const ok of ['cifar10', 'team-a/imagenet/train', 'a.b/c_d', 'x']) assert.equal(prefixProblem(ok), undefined, ok);
  assert.match(prefixProblem('/abs')!, /start with "\/"/);
  for (const bad of ['a//b', 'a/']) assert.match(prefixProblem(bad)!, /empty segments/, bad);
  for (const bad of ['..', 'a/../b', 'team-a/..', './a', 'a/./b']) assert.match(prefixProblem(bad)!, /"\." or "\.\." segments/, bad);
  assert.match(prefixProblem('a\\..\\b')!, /"\\"/);
  assert.match(prefixProblem('a\nb')!, /control characters/);
  // "..." and "a..b" are names, not parent references
  assert.equal(prefixProblem('a..b/...'), undefined);
  assert.match(datasetPrefixProblem('checkpoints/job-1')!, /checkpoints\//);
  assert.equal(datasetPrefixProblem('checkpoints-old'), undefined);
});

test('a spec naming another place through .. or the checkpoints is a 400 naming dataset.prefix', () => {
  const spec = (prefix: string) => parseJobSpec({
    model: { name: 'resnet18' }, dataset: { bucket: 'data', prefix }, parallelism: { dataParallel: 1 }, batchSize: 8, epochs: 1, optimizer: { type: 'sgd', lr: 0.1 },
  });
  assert.deepEqual(spec('team-a/../team-b').errors, [{ field: 'dataset.prefix', message: 'must not contain "." or ".." segments' }]);
  assert.deepEqual(spec('checkpoints/job-x').errors?.map((e) => e.field), ['dataset.prefix']);
  assert.deepEqual(spec('/team-b').errors, [{ field: 'dataset.prefix', message: 'must not start or end with "/"' }]);
  assert.equal(spec('team-a/cifar').errors, undefined);
});

test('scopes: whole segments without "*", a string prefix with it, the whole bucket', () => {
  const seg = parseScope('data/team-a');
  assert.ok(scopeCovers(seg, 'data', 'team-a') && scopeCovers(seg, 'data', 'team-a/cifar'));
  assert.ok(!scopeCovers(seg, 'data', 'team-ab'), 'team-a does not cover team-ab');
  assert.ok(!scopeCovers(seg, 'other', 'team-a'));
  const star = parseScope('data/team-a*');
  assert.ok(scopeCovers(star, 'data', 'team-ab/x') && !scopeCovers(star, 'data', 'team-b'));
  const dir = parseScope('data/team-a/*');
  assert.ok(scopeCovers(dir, 'data', 'team-a/x') && !scopeCovers(dir, 'data', 'team-a'));
  for (const whole of ['data', 'data/*']) assert.ok(scopeCovers(parseScope(whole), 'data', 'anything/at/all'), whole);
  assert.equal(formatScope(parseScope('data')), 'data/*');
  assert.throws(() => parseScope('*/x'), /bucket/);
  assert.throws(() => parseScope('data/a*b'), /may only end/);
  assert.throws(() => parseScope('data/../x'), /"\." or "\.\."/);
  assert.throws(() => parseScope('data/a/'), /without "\/"/);
});
