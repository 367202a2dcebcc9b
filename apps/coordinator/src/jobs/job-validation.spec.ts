import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BadRequestException } from '@nestjs/common';
import { JobSpecDto } from '@tensorfleet/control';
import { specValidationPipe } from './job-validation';

const meta = { type: 'body' as const, metatype: JobSpecDto, data: '' };
const valid = () => ({
  model: { name: 'alexnet' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel: 1 },
  batchSize: 8, epochs: 1, optimizer: { type: 'sgd', lr: 0.01 },
});

async function rejected(body: unknown): Promise<{ message: string[]; fields: string[] }> {
  try {
    await specValidationPipe().transform(body, meta);
  } catch (e) {
    assert.ok(e instanceof BadRequestException);
    return e.getResponse() as { message: string[]; fields: string[] };
  }
  throw new Error('expected a 400');
}

test('the pipe answers 400 with `field: message` lines and the dotted field names', async () => {
  const { model: _m, ...noModel } = valid();
  assert.deepEqual((await rejected(noModel)).fields, ['model']);
  const neg = await rejected({ ...valid(), batchSize: -1 });
  assert.deepEqual(neg, { ...neg, fields: ['batchSize'], message: ['batchSize: must not be less than 1'] });
  const nested = await rejected({ ...valid(), optimizer: { type: 'sgd', lr: 0 }, lrSchedule: { type: 'cosine', warmupSteps: -5 } });
  assert.deepEqual(nested.fields.sort(), ['lrSchedule.warmupSteps', 'optimizer.lr']);
  assert.ok(nested.message.includes('optimizer.lr: must be a positive number'), nested.message.join('|'));
});

test('a valid body comes out as a JobSpecDto instance with nested instances', async () => {
  const dto = (await specValidationPipe().transform(valid(), meta)) as JobSpecDto;
  assert.ok(dto instanceof JobSpecDto);
  assert.equal(dto.optimizer.constructor.name, 'OptimizerSpecDto');
});
