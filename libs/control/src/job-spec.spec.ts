import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultAugmentation, formatFieldErrors, globalBatchOf, isElastic, parseJobSpec, recoveryOf, type FieldError } from './job-spec';

const valid = () => ({
  model: { name: 'resnet18', numClasses: 10 },
  dataset: { bucket: 'data', prefix: 'cifar10' },
  parallelism: { dataParallel: 2 },
  batchSize: 32,
  epochs: 1,
  optimizer: { type: 'sgd', lr: 0.1 },
});

function errorsOf(input: unknown): FieldError[] {
  const r = parseJobSpec(input);
  assert.ok(r.errors, `expected errors, got spec ${JSON.stringify(r.spec)}`);
  return r.errors;
}
const fields = (input: unknown) => errorsOf(input).map((e) => e.field);

test('a minimal spec validates and gets every default', () => {
  const r = parseJobSpec(valid());
  assert.equal(r.errors, undefined);
  assert.deepEqual(r.spec, {
    model: { name: 'resnet18', numClasses: 10 },
    dataset: { bucket: 'data', prefix: 'cifar10' },
    parallelism: { dataParallel: 2 },
    batchSize: 32,
    epochs: 1,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4, nesterov: false },
    lrSchedule: { type: 'constant', warmupSteps: 0, gamma: 0.1, patience: 5, scaleWithWorldSize: true },
    checkpoint: { intervalSteps: 0, keep: 3, bucket: 'data', background: true },
    evaluation: { atEnd: true, tenCrop: false },
    freezeBatchNorm: false,
    deferredBatchNorm: false,
    wire: 'fp32',
    seed: 0,
    priority: 0,
  });
});

test('given values win over defaults; pipeline and alexnet-columns fill their own', () => {
  const r = parseJobSpec({
    ...valid(), seed: 7, priority: 3, wire: 'fp16',
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0, weightDecay: 0, nesterov: true },
    lrSchedule: { type: 'step', milestones: [30, 10], scaleWithWorldSize: false },
    parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline' } },
    evaluation: { atEnd: false, everyEpochs: 2 },
  });
  assert.ok(r.spec);
  assert.deepEqual(r.spec.optimizer, { type: 'sgd', lr: 0.05, momentum: 0, weightDecay: 0, nesterov: true });
  assert.deepEqual(r.spec.lrSchedule.milestones, [10, 30]);
  assert.equal(r.spec.lrSchedule.scaleWithWorldSize, false);
  assert.deepEqual(r.spec.parallelism.modelParallel, { kind: 'pipeline', stages: 2, microBatches: 4, schedule: 'gpipe', balance: 'macs' });
  assert.equal(r.spec.deferredBatchNorm, true, 'a pipeline defers its batch-norm statistics');
  assert.deepEqual(r.spec.evaluation, { atEnd: false, everyEpochs: 2, tenCrop: false });
  assert.equal(r.spec.seed, 7);
  const cols = parseJobSpec({ ...valid(), parallelism: { dataParallel: 1, modelParallel: { kind: 'alexnet-columns', stages: 4 } } });
  assert.deepEqual(cols.spec?.parallelism.modelParallel, { kind: 'alexnet-columns', stages: 2, microBatches: 1 });
});

test('model-parallel combinations no single field shows: micro-batches that do not divide the batch, too few under 1F1B, microBatchSize beside them, pipeline options on the columns', () => {
  const mp = (modelParallel: object, over: object = {}) => fields({ ...valid(), batchSize: 32, parallelism: { dataParallel: 1, modelParallel }, ...over });
  assert.deepEqual(mp({ kind: 'pipeline', microBatches: 5 }), ['parallelism.modelParallel.microBatches']);
  assert.deepEqual(mp({ kind: 'pipeline', stages: 4, microBatches: 2, schedule: '1f1b' }), ['parallelism.modelParallel.microBatches']);
  assert.equal(parseJobSpec({ ...valid(), batchSize: 32, parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 2, microBatches: 2, schedule: '1f1b' } } }).errors, undefined, 'as many micro-batches as stages is enough');
  assert.deepEqual(mp({ kind: 'pipeline' }, { microBatchSize: 8 }), ['microBatchSize']);
  assert.deepEqual(mp({ kind: 'alexnet-columns', cuts: ['conv3_5'] }), ['parallelism.modelParallel']);
  assert.deepEqual(mp({ kind: 'pipeline', schedule: 'zigzag' }), ['parallelism.modelParallel.schedule']);
  assert.deepEqual(mp({ kind: 'pipeline', stages: 1 }), ['parallelism.modelParallel.stages']);
  assert.ok(errorsOf({ ...valid(), batchSize: 32, parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', microBatches: 5 } } })[0].message.includes('do not divide batchSize 32'));
});

test('missing model is named `model`', () => {
  const { model: _m, ...rest } = valid();
  assert.deepEqual(fields(rest), ['model']);
  const s = errorsOf({ ...valid(), model: 'resnet18' });
  assert.ok(s.some((e) => e.field === 'model' && /object/.test(e.message)), JSON.stringify(s));
});

test('microBatchSize: at most batchSize, kept only when it splits the batch', () => {
  assert.equal(parseJobSpec({ ...valid(), microBatchSize: 8 }).spec?.microBatchSize, 8);
  assert.equal(parseJobSpec({ ...valid(), microBatchSize: 32 }).spec?.microBatchSize, undefined);
  const e = errorsOf({ ...valid(), microBatchSize: 33 });
  assert.deepEqual(e.map((x) => x.field), ['microBatchSize']);
  assert.match(e[0].message, /must not exceed batchSize \(32\)/);
  assert.deepEqual(fields({ ...valid(), microBatchSize: 0 }), ['microBatchSize']);
});

test('defaultAugmentation: the family pipeline at ImageNet sizes, pad-and-crop below 64 pixels', () => {
  assert.equal(defaultAugmentation('resnet', 224), 'resnet');
  assert.equal(defaultAugmentation('alexnet', 224), 'alexnet');
  assert.equal(defaultAugmentation('resnet', 32), 'small');
  assert.equal(defaultAugmentation('alexnet', 63), 'small');
});

test('negative or fractional batch size is named `batchSize`', () => {
  const e = errorsOf({ ...valid(), batchSize: -1 });
  assert.deepEqual(e.map((x) => x.field), ['batchSize']);
  assert.equal(e[0].message, 'must not be less than 1');
  assert.deepEqual(fields({ ...valid(), batchSize: 2.5 }), ['batchSize']);
});

test('nested fields are named by their dotted path', () => {
  assert.deepEqual(fields({ ...valid(), optimizer: { type: 'sgd', lr: -0.1 } }), ['optimizer.lr']);
  const e = errorsOf({ ...valid(), optimizer: { type: 'adam', lr: 0.1, momentum: 1.5 } });
  assert.deepEqual(e.map((x) => x.field).sort(), ['optimizer.momentum', 'optimizer.type']);
  assert.ok(e.every((x) => !x.message.startsWith('momentum') && !x.message.startsWith('type')), JSON.stringify(e));
  assert.equal(formatFieldErrors([e.find((x) => x.field === 'optimizer.momentum')!]), 'optimizer.momentum: must not be greater than 1');
  assert.deepEqual(fields({ ...valid(), parallelism: { dataParallel: 0 } }), ['parallelism.dataParallel']);
  assert.deepEqual(fields({ ...valid(), parallelism: { dataParallel: 1, modelParallel: { kind: 'tensor' } } }), ['parallelism.modelParallel.kind']);
  assert.deepEqual(fields({ ...valid(), dataset: { bucket: 'data' } }), ['dataset.prefix']);
  assert.deepEqual(fields({ ...valid(), dataset: { bucket: 'x', prefix: 'p' } }), ['dataset.bucket']);
  assert.deepEqual(fields({ ...valid(), checkpoint: { bucket: 'Bad_Bucket' } }), ['checkpoint.bucket']);
  assert.deepEqual(fields({ ...valid(), lrSchedule: { type: 'step', milestones: [10, -1] } }), ['lrSchedule.milestones']);
});

test('cross-field rules: epochs or steps; a step schedule needs stepSize or milestones', () => {
  const { epochs: _e, ...noLength } = valid();
  const e = errorsOf(noLength);
  assert.equal(e[0].field, 'epochs');
  assert.match(e[0].message, /epochs or steps/);
  assert.ok(parseJobSpec({ ...noLength, steps: 100 }).spec);
  assert.deepEqual(fields({ ...valid(), lrSchedule: { type: 'step' } }), ['lrSchedule.stepSize']);
  assert.ok(parseJobSpec({ ...valid(), lrSchedule: { type: 'step', stepSize: 30 } }).spec);
});

test('unknown fields are rejected by name (typos do not pass silently)', () => {
  assert.deepEqual(fields({ ...valid(), epoch: 3 }), ['epoch']);
  assert.deepEqual(fields({ ...valid(), optimizer: { type: 'sgd', lr: 0.1, moment: 0.9 } }), ['optimizer.moment']);
  // model.options is free-form: variant options go through unchecked.
  assert.ok(parseJobSpec({ ...valid(), model: { name: 'resnet50', options: { zeroInitResidual: true } } }).spec);
});

test('YAML and JSON text parse; non-objects and bad YAML are errors, not throws', () => {
  const yaml = [
    'model: { name: alexnet }',
    'dataset: { bucket: data, prefix: imagenet/train }',
    'parallelism: { dataParallel: 4 }',
    'batchSize: 64',
    'steps: 1000',
    'optimizer: { type: sgd, lr: 0.01 }',
    'augmentation: alexnet',
  ].join('\n');
  const r = parseJobSpec(yaml);
  assert.equal(r.spec?.model.name, 'alexnet');
  assert.equal(r.spec?.steps, 1000);
  assert.equal(r.spec?.augmentation, 'alexnet');
  assert.equal(parseJobSpec(JSON.stringify(valid())).spec?.batchSize, 32);
  assert.deepEqual(fields('[1, 2]'), ['']);
  assert.deepEqual(fields('model: [unclosed'), ['']);
  assert.deepEqual(fields(null), ['']);
});

test('recovery: a restart budget of 3 and exactly the asked replicas by default; bad ranges name the field', () => {
  const spec = parseJobSpec(valid()).spec!;
  const dp = spec.parallelism.dataParallel;
  assert.deepEqual(recoveryOf(spec), { maxRestarts: 3, minDataParallel: dp, maxDataParallel: dp });
  // batch 48 × 2 = 96, divisible by every size 1..4
  const elastic = parseJobSpec({ ...valid(), batchSize: 48, recovery: { maxRestarts: 5, minDataParallel: 1, maxDataParallel: dp + 2 } }).spec!;
  assert.deepEqual(recoveryOf(elastic), { maxRestarts: 5, minDataParallel: 1, maxDataParallel: dp + 2 });
  assert.ok(isElastic(elastic) && !isElastic(spec));
  assert.equal(globalBatchOf(elastic), 96);
  assert.deepEqual(fields({ ...valid(), recovery: { maxRestarts: -1 } }), ['recovery.maxRestarts']);
  assert.deepEqual(fields({ ...valid(), recovery: { minDataParallel: dp + 1 } }), ['recovery.minDataParallel']);
  assert.deepEqual(fields({ ...valid(), recovery: { maxDataParallel: dp - 1 } }), ['recovery.maxDataParallel']);
  assert.deepEqual(fields({ ...valid(), recovery: { restarts: 2 } }), ['recovery.restarts']);
});

test('elastic ranges: every size must divide the global batch; data-parallel jobs only', () => {
  // 32 × 2 = 64: 3 does not divide it
  const e = errorsOf({ ...valid(), recovery: { minDataParallel: 1, maxDataParallel: 4 } });
  assert.deepEqual(e.map((x) => x.field), ['recovery']);
  assert.match(e[0].message, /batchSize × dataParallel = 64.*3 does not/);
  assert.equal(parseJobSpec({ ...valid(), recovery: { minDataParallel: 1, maxDataParallel: 2 } }).errors, undefined);
  const mp = errorsOf({ ...valid(), parallelism: { dataParallel: 2, modelParallel: { kind: 'pipeline', stages: 2, microBatches: 4 } }, recovery: { minDataParallel: 1 } });
  assert.deepEqual(mp.map((x) => x.field), ['recovery']);
  assert.match(mp[0].message, /data-parallel job/);
});
