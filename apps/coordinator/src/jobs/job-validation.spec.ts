import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadRequestException, type PipeTransform } from '@nestjs/common';
import { jobSpecSchema, resumeJobSchema } from '@tensorfleet/control';
import { schemaPipe } from './job-validation';

const valid = () => ({
  model: { name: 'alexnet' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel: 1 },
  batchSize: 8, epochs: 1, optimizer: { type: 'sgd', lr: 0.01 },
});

function rejected(body: unknown, pipe: PipeTransform<unknown, unknown> = schemaPipe(jobSpecSchema)): { message: string[]; fields: string[] } {
  try {
    pipe.transform(body, { type: 'body' });
  } catch (e) {
    assert.ok(e instanceof BadRequestException);
    return e.getResponse() as { message: string[]; fields: string[] };
  }
  throw new Error('expected a 400');
}

test('the pipe answers 400 with `field: message` lines and the dotted field names', () => {
  const { model: _m, ...noModel } = valid();
  assert.deepEqual(rejected(noModel).fields, ['model']);
  const neg = rejected({ ...valid(), batchSize: -1 });
  assert.deepEqual(neg, { ...neg, fields: ['batchSize'], message: ['batchSize: must not be less than 1'] });
  const nested = rejected({ ...valid(), optimizer: { type: 'sgd', lr: 0 }, lrSchedule: { type: 'cosine', warmupSteps: -5 } });
  assert.deepEqual(nested.fields.sort(), ['lrSchedule.warmupSteps', 'optimizer.lr']);
  assert.ok(nested.message.includes('optimizer.lr: must be a positive number'), nested.message.join('|'));
  assert.deepEqual(rejected({ ...valid(), dataset: { bucket: 'bkt', prefix: 'team-a/../team-b' } }).message, ['dataset.prefix: must not contain "." or ".." segments']);
  assert.deepEqual(rejected([valid()]).fields, ['']);
});

test('a valid body passes as sent (the service fills the defaults); an absent resume body is {}', () => {
  const body = valid();
  assert.equal(schemaPipe(jobSpecSchema).transform(body, { type: 'body' }), body);
  assert.deepEqual(schemaPipe(resumeJobSchema, { optional: true }).transform(undefined, { type: 'body' }), {});
  assert.deepEqual(rejected({ parallelism: { dataParallel: 0 } }, schemaPipe(resumeJobSchema, { optional: true })).fields, ['parallelism.dataParallel']);
});
