// The Trainer on zoo models (@tensorfleet/models' createModel), cpu and wasm backends.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createModel, initBackend, tf } from '@tensorfleet/models';
import { Trainer } from './trainer';
import { createLrSchedule } from '../schedule/lr-schedule';
import { createInProcessGroup } from '../testing/in-process-comm';
import { randomBatch, sliceBatch, weightsOf } from '../testing/fixtures';

// Small inputs keep the pure-JS cpu backend to a few seconds on a shared machine.
const IN = 8;
const model = (seed: number) => createModel('resnet8', { numClasses: 4, inputSize: IN, seed });
const schedule = () => createLrSchedule({ type: 'constant', lr: 0.05 }, { stepsPerEpoch: 10, totalSteps: 10 });
const optimizer = { momentum: 0.9, weightDecay: 5e-4, nesterov: true };

function maxRelDiff(a: Float32Array[], b: Float32Array[]): number {
  let diff = 0;
  let scale = 0;
  a.forEach((w, i) => w.forEach((v, j) => {
    diff = Math.max(diff, Math.abs(v - b[i][j]));
    scale = Math.max(scale, Math.abs(b[i][j]));
  }));
  return diff / scale;
}

describe('Trainer on resnet8', () => {
  it('wasm: two ranks on half batches = one trainer on the combined batch (frozen BN), seeded createModel', async () => {
    await initBackend({ backend: 'wasm' });
    // In-process fake communicator (see data-parallel.spec.ts); test/ runs the real ZeroMQ path.
    const comms = createInProcessGroup(2);
    const ranks = comms.map((comm) => new Trainer({ model: model(5), optimizer, schedule: schedule(), comm, freezeBatchNorm: true }));
    const single = new Trainer({ model: model(5), optimizer, schedule: schedule(), freezeBatchNorm: true });
    const init = weightsOf(single.model);
    for (let s = 0; s < 2; s++) {
      const batch = randomBatch(40 + s, 8, [IN, IN, 3], 4);
      await Promise.all(ranks.map((t, r) => t.step(sliceBatch(batch, r * 4, r * 4 + 4))));
      await single.step(batch);
    }
    const w = weightsOf(ranks[0].model);
    assert.deepEqual(weightsOf(ranks[1].model), w);
    const rel = maxRelDiff(w, weightsOf(single.model));
    assert.ok(rel < 1e-5, `max relative difference ${rel}`);
    assert.ok(maxRelDiff(init, weightsOf(single.model)) > 1e-4, 'weights moved');
    [...ranks, single].forEach((t) => t.dispose());
  });

  it('wasm: BN moving stats update and survive, no leaks, and the step matches the cpu backend', async () => {
    const batch = randomBatch(7, 8, [IN, IN, 3], 4);
    await initBackend({ backend: 'cpu' });
    const ref = new Trainer({ model: model(9), optimizer, schedule: schedule() });
    const refLoss = (await ref.step(batch)).loss;
    const refW = weightsOf(ref.model);

    const info = await initBackend({ backend: 'wasm' });
    assert.equal(tf.getBackend(), 'wasm', JSON.stringify(info));
    const t = new Trainer({ model: model(9), optimizer, schedule: schedule() });
    const before = weightsOf(t.model);
    const r = await t.step(batch);
    const after = weightsOf(t.model);
    const moving = t.model.weights.map((w, i) => [w.originalName, i] as const).filter(([n]) => /moving_mean$/.test(n)).map(([, i]) => i);
    assert.ok(moving.length >= 3);
    for (const i of moving) assert.notDeepEqual(after[i], before[i], `${t.model.weights[i].originalName} must move`);
    assert.ok(Math.abs(r.loss - refLoss) < 1e-4 * refLoss, `wasm loss ${r.loss} vs cpu ${refLoss}`);
    const rel = maxRelDiff(after, refW);
    assert.ok(rel < 1e-4, `wasm vs cpu weights after one step: max relative difference ${rel}`);
    const n = tf.memory().numTensors;
    await t.step(batch);
    await t.step(batch);
    assert.equal(tf.memory().numTensors, n, 'no tensors leak on wasm');
    [ref, t].forEach((x) => x.dispose());
  });
});
