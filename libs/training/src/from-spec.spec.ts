import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '@tensorfleet/models';
import { parseJobSpec, type JobSpec } from '@tensorfleet/control';
import { createTrainerFromSpec } from './from-spec';
import { createInProcessGroup } from './testing/in-process-comm';
import { randomBatch, tinyConvNet, weightsOf } from './testing/fixtures';
import { TrainerComm } from './trainer/comm';

before(async () => {
  await tf.setBackend('cpu');
});

function spec(extra: Record<string, unknown>): JobSpec {
  const r = parseJobSpec({
    model: { name: 'resnet18' },
    dataset: { bucket: 'training-spec', prefix: 'p' },
    parallelism: { dataParallel: 2 },
    batchSize: 64,
    epochs: 10,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4, nesterov: true },
    ...extra,
  });
  assert.ok(r.spec, JSON.stringify(r.errors));
  return r.spec;
}

describe('createTrainerFromSpec', () => {
  it('maps optimizer, schedule (Goyal scaling, warmup, milestones in epochs), freezeBatchNorm and wire', async () => {
    const s = spec({
      lrSchedule: { type: 'step', milestones: [3, 6], warmupSteps: 4, gamma: 0.5, scaleWithWorldSize: true },
      freezeBatchNorm: true,
      wire: 'fp16',
    });
    const seen: unknown[] = [];
    const comms = createInProcessGroup(2).map((c): TrainerComm => ({
      ...c,
      rank: c.rank,
      worldSize: c.worldSize,
      allReduceMany: (bufs, opts) => (seen.push(opts), c.allReduceMany(bufs, opts)),
    }));
    const trainers = comms.map((comm) => createTrainerFromSpec(s, tinyConvNet(3), comm, { stepsPerEpoch: 10, bucketBytes: 1 << 16 }));
    const t = trainers[0];
    assert.deepEqual(t.sgd.options, { momentum: 0.9, weightDecay: 5e-4, nesterov: true, decayAll: false });
    // 2 ranks × 64 = 128 samples: k = 0.5 → peak 0.05; k < 1 so warmup from 0 over 4 steps.
    assert.equal(t.schedule.peakLr, 0.05);
    assert.deepEqual([0, 2, 4, 29, 30, 60].map((i) => t.schedule.lr(i)), [0, 0.025, 0.05, 0.05, 0.025, 0.0125]);
    const bn = t.model.weights.findIndex((w) => /moving_mean/.test(w.name));
    const before = weightsOf(t.model)[bn];
    await Promise.all(trainers.map((tr, r) => tr.step(randomBatch(r, 4, [8, 8, 3], 5))));
    assert.deepEqual(weightsOf(t.model)[bn], before, 'freezeBatchNorm keeps the moving stats');
    assert.deepEqual(seen[0], { op: 'mean', wire: 'fp16', bucketBytes: 1 << 16, algorithm: 'auto' });
    trainers.forEach((tr) => tr.dispose());
  });

  it('uses steps when given, cosine to 0 there; defaults (scaleWithWorldSize on) without a communicator', () => {
    const s = spec({ steps: 50, lrSchedule: { type: 'cosine' } });
    const t = createTrainerFromSpec(s, tinyConvNet(1), null, { stepsPerEpoch: 7 });
    // Single process, batch 64: k = 64/256 = 0.25 → peak 0.025.
    assert.equal(t.schedule.peakLr, 0.025);
    assert.equal(t.schedule.lr(25), 0.0125);
    assert.equal(t.schedule.lr(50), 0);
    t.dispose();
  });
});
