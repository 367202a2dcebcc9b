import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '@tensorfleet/models';
import { Trainer } from './trainer';
import { createLrSchedule } from '../schedule/lr-schedule';
import { randomBatch, tinyConvNet, weightsOf } from '../testing/fixtures';
import { TrainingError } from '../errors';

before(async () => {
  await tf.setBackend('cpu');
});

const constant = (lr: number) => createLrSchedule({ type: 'constant', lr }, { stepsPerEpoch: 10, totalSteps: 100 });

/** Float64 reference of a linear softmax classifier trained by PyTorch-style SGD. */
function referenceLinear(
  W: number[][], b: number[],
  batches: { images: Float32Array; labels: Int32Array; size: number }[],
  lrs: number[], o: { momentum: number; weightDecay: number; nesterov: boolean; decayAll: boolean },
): { W: number[][]; b: number[]; losses: number[]; accs: number[] } {
  const D = W.length;
  const C = b.length;
  const vW = W.map((row) => row.map(() => 0));
  const vb = b.map(() => 0);
  const losses: number[] = [];
  const accs: number[] = [];
  batches.forEach((batch, t) => {
    const N = batch.size;
    const gW = W.map((row) => row.map(() => 0));
    const gb = b.map(() => 0);
    let loss = 0;
    let correct = 0;
    for (let n = 0; n < N; n++) {
      const z = b.map((bc, c) => bc + W.reduce((s, row, d) => s + batch.images[n * D + d] * row[c], 0));
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const sum = e.reduce((a, v) => a + v, 0);
      const p = e.map((v) => v / sum);
      const y = batch.labels[n];
      loss -= Math.log(p[y]) / N;
      if (z.indexOf(m) === y) correct++;
      for (let c = 0; c < C; c++) {
        const g = (p[c] - (c === y ? 1 : 0)) / N;
        gb[c] += g;
        for (let d = 0; d < D; d++) gW[d][c] += batch.images[n * D + d] * g;
      }
    }
    losses.push(loss);
    accs.push(correct / N);
    const update = (w: number[], g: number[], v: number[], decay: boolean) => {
      for (let i = 0; i < w.length; i++) {
        let gi = g[i] + (decay ? o.weightDecay * w[i] : 0);
        if (o.momentum > 0) {
          v[i] = o.momentum * v[i] + gi;
          gi = o.nesterov ? gi + o.momentum * v[i] : v[i];
        }
        w[i] -= lrs[t] * gi;
      }
    };
    W.forEach((row, d) => update(row, gW[d], vW[d], true));
    update(b, gb, vb, o.decayAll);
  });
  return { W, b, losses, accs };
}

function linearModel(D: number, C: number, seed: number): tf.LayersModel {
  return tf.sequential({
    layers: [tf.layers.dense({
      inputShape: [D], units: C,
      kernelInitializer: tf.initializers.randomNormal({ stddev: 0.5, seed }),
      biasInitializer: tf.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: seed + 1 }),
    })],
  });
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= rtol * scale, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (error ${err}, allowed ${rtol * scale})`);
  }
}

describe('Trainer against a float64 reference (linear softmax, SGD)', () => {
  const D = 6;
  const C = 4;
  const cases = [
    { momentum: 0.9, weightDecay: 0.01, nesterov: false, decayAll: false },
    { momentum: 0.9, weightDecay: 0.05, nesterov: true, decayAll: true },
    { momentum: 0, weightDecay: 0, nesterov: false, decayAll: false },
    // Gradient accumulation over passes of 3, 3 and 2 (batch 8) must equal the one-pass step.
    { momentum: 0.9, weightDecay: 0.01, nesterov: false, decayAll: false, microBatchSize: 3 },
  ];
  for (const o of cases) {
    it(`matches hand-computed steps: ${JSON.stringify(o)}`, async () => {
      const model = linearModel(D, C, 7);
      const [W0, b0] = model.getWeights().map((w) => Array.from(w.dataSync()));
      const W = Array.from({ length: D }, (_, d) => W0.slice(d * C, d * C + C));
      // step schedule: lr 0.5 for the first epoch (2 steps), then 0.25, then 0.125.
      const schedule = createLrSchedule({ type: 'step', lr: 0.5, stepSize: 1, gamma: 0.5 }, { stepsPerEpoch: 2, totalSteps: 6 });
      const trainer = new Trainer({ model, optimizer: o, schedule, microBatchSize: o.microBatchSize });
      const batches = Array.from({ length: 6 }, (_, i) => randomBatch(100 + i, 8, [D], C));
      const lrs = batches.map((_, t) => schedule.lr(t));
      assert.deepEqual(lrs, [0.5, 0.5, 0.25, 0.25, 0.125, 0.125]);
      const results = [];
      for (const batch of batches) results.push(await trainer.step(batch));
      const ref = referenceLinear(W, b0, batches, lrs, o);
      assertClose(results.map((r) => r.loss), ref.losses, 1e-5, 'loss');
      assert.deepEqual(results.map((r) => r.accuracy), ref.accs);
      assert.deepEqual(results.map((r) => r.lr), lrs);
      const [Wt, bt] = model.getWeights().map((w) => w.dataSync());
      assertClose(Wt, ref.W.flat(), 1e-5, 'kernel');
      assertClose(bt, ref.b, 1e-5, 'bias');
      trainer.dispose();
    });
  }

  it('does not decay biases unless decayAll (zero gradient, only decay moves weights)', async () => {
    const model = linearModel(2, 2, 3);
    const trainer = new Trainer({ model, optimizer: { weightDecay: 0.1 }, schedule: constant(1), output: 'logits' });
    assert.deepEqual(trainer.sgd.decayMask(), [true, false]);
    const all = new Trainer({ model, optimizer: { weightDecay: 0.1, decayAll: true }, schedule: constant(1) });
    assert.deepEqual(all.sgd.decayMask(), [true, true]);
    trainer.dispose();
    all.dispose();
  });
});

describe('Trainer step', () => {
  it('lowers the loss on a fixed batch and leaks no tensors', async () => {
    const model = tinyConvNet(11);
    const trainer = new Trainer({ model, optimizer: { momentum: 0.9, weightDecay: 1e-4, nesterov: true }, schedule: constant(0.1) });
    const batch = randomBatch(1, 16, [8, 8, 3], 5);
    const first = await trainer.step(batch);
    const before = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 15; i++) last = await trainer.step(batch);
    assert.equal(tf.memory().numTensors, before, 'tensor count must stay flat across steps');
    assert.ok(last.loss < first.loss * 0.9, `loss ${first.loss} → ${last.loss} should fall on a memorisable batch`);
    assert.equal(trainer.stepsDone, 16);
    const t = last.timings;
    assert.ok(t.computeMs > 0 && t.allReduceMs >= 0 && t.updateMs > 0, JSON.stringify(t));
    await trainer.evaluate([batch]);
    assert.equal(tf.memory().numTensors, before, 'evaluate must not leak either');
    trainer.dispose();
    const micro = new Trainer({ model, optimizer: { momentum: 0.9 }, schedule: constant(0.1), microBatchSize: 5 });
    await micro.step(batch);
    const beforeMicro = tf.memory().numTensors;
    await micro.step(batch);
    assert.equal(tf.memory().numTensors, beforeMicro, 'micro-batched steps must not leak');
    assert.throws(() => new Trainer({ model, optimizer: {}, schedule: constant(0.1), microBatchSize: 0 }), /microBatchSize/);
    micro.dispose();
  });

  it('updates BN moving statistics in training mode and keeps them; leaves them alone when frozen', async () => {
    const batch = randomBatch(2, 8, [8, 8, 3], 5);
    const movingIdx = (m: tf.LayersModel) => m.weights.map((w, i) => [w.name, i] as const).filter(([n]) => /moving_(mean|variance)/.test(n)).map(([, i]) => i);

    const live = tinyConvNet(5);
    const idx = movingIdx(live);
    assert.equal(idx.length, 2);
    const before = weightsOf(live);
    const t1 = new Trainer({ model: live, optimizer: {}, schedule: constant(0.01) });
    await t1.step(batch);
    const afterOne = weightsOf(live);
    for (const i of idx) assert.notDeepEqual(afterOne[i], before[i], `${live.weights[i].name} should move in training mode`);
    await t1.step(batch);
    const afterTwo = weightsOf(live);
    for (const i of idx) assert.notDeepEqual(afterTwo[i], afterOne[i], `${live.weights[i].name} should keep moving`);
    // Moving mean is a momentum-0.9 average from 0: after one step, 0.1 × the batch mean of
    // the conv output (computed with the initial kernel, before the step's update).
    const kernel = tf.tensor(before[0], live.weights[0].shape as number[]);
    const x = tf.tensor(batch.images, [8, 8, 8, 3]);
    const convMean = tf.mean(tf.conv2d(x as tf.Tensor4D, kernel as tf.Tensor4D, 1, 'same'), [0, 1, 2]).dataSync();
    tf.dispose([kernel, x]);
    afterOne[idx[0]].forEach((m, c) => assert.ok(Math.abs(m - 0.1 * convMean[c]) < 1e-6, `moving mean ${m} vs ${0.1 * convMean[c]}`));

    const frozen = tinyConvNet(5);
    const fb = weightsOf(frozen);
    const t2 = new Trainer({ model: frozen, optimizer: {}, schedule: constant(0.01), freezeBatchNorm: true });
    await t2.step(batch);
    const fa = weightsOf(frozen);
    for (const i of idx) assert.deepEqual(fa[i], fb[i], 'frozen BN must not update moving stats');
    assert.notDeepEqual(fa[0], fb[0], 'but the conv kernel still trains');
    t1.dispose();
    t2.dispose();
  });

  it('rejects malformed batches with a typed error', async () => {
    const trainer = new Trainer({ model: tinyConvNet(1), optimizer: {}, schedule: constant(0.1) });
    const b = randomBatch(1, 4, [8, 8, 3], 5);
    await assert.rejects(trainer.step({ ...b, size: 5 }), (e: unknown) => e instanceof TrainingError && e.code === 'INVALID_BATCH');
    await assert.rejects(trainer.step({ ...b, labels: new Int32Array([0, 1, 2, 9]) }), /outside \[0, 5\)/);
    assert.throws(() => new Trainer({ model: tinyConvNet(1), optimizer: { nesterov: true }, schedule: constant(0.1) }), /nesterov needs momentum/);
    trainer.dispose();
  });

  it('evaluate: loss, top-1 and top-5 match a JS reference computed from the logits', async () => {
    const model = tinyConvNet(3, 7);
    const trainer = new Trainer({ model, optimizer: {}, schedule: constant(0.1) });
    const batches = [randomBatch(20, 6, [8, 8, 3], 7), randomBatch(21, 5, [8, 8, 3], 7)];
    const res = await trainer.evaluate(batches);
    let loss = 0, top1 = 0, top5 = 0, n = 0;
    for (const b of batches) {
      const out = tf.tidy(() => (model.apply(tf.tensor(b.images, [b.size, 8, 8, 3]), { training: false }) as tf.Tensor).arraySync()) as number[][];
      out.forEach((z, i) => {
        const m = Math.max(...z);
        const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
        loss += lse - z[b.labels[i]];
        const rank = z.filter((v) => v > z[b.labels[i]]).length;
        top1 += rank < 1 ? 1 : 0;
        top5 += rank < 5 ? 1 : 0;
        n++;
      });
    }
    assert.equal(res.samples, 11);
    assert.ok(Math.abs(res.loss - loss / n) < 1e-5, `${res.loss} vs ${loss / n}`);
    assert.equal(res.accuracy, top1 / n);
    assert.equal(res.top5, top5 / n);
    assert.ok(res.top5 >= res.accuracy);
    trainer.dispose();
  });

  it('evaluate with crops: the softmax averaged over each sample\'s crops, as a JS reference computes it', async () => {
    const model = tinyConvNet(4, 7);
    const trainer = new Trainer({ model, optimizer: {}, schedule: constant(0.1) });
    const crops = 3;
    const views = randomBatch(30, 4 * crops, [8, 8, 3], 7);
    const labels = randomBatch(31, 4, [1], 7).labels;
    const res = await trainer.evaluate([{ images: views.images, labels, size: 4, crops }]);
    const out = tf.tidy(() => (model.apply(tf.tensor(views.images, [4 * crops, 8, 8, 3]), { training: false }) as tf.Tensor).arraySync()) as number[][];
    let loss = 0, top1 = 0, top5 = 0;
    for (let i = 0; i < 4; i++) {
      const p = new Array(7).fill(0);
      for (let k = 0; k < crops; k++) {
        const z = out[i * crops + k];
        const m = Math.max(...z);
        const e = z.map((v) => Math.exp(v - m));
        const sum = e.reduce((a, v) => a + v, 0);
        e.forEach((v, c) => (p[c] += v / sum / crops));
      }
      loss -= Math.log(p[labels[i]]);
      const rank = p.filter((v) => v > p[labels[i]]).length;
      top1 += rank < 1 ? 1 : 0;
      top5 += rank < 5 ? 1 : 0;
    }
    assert.equal(res.samples, 4);
    assert.ok(Math.abs(res.loss - loss / 4) < 1e-5, `${res.loss} vs ${loss / 4}`);
    assert.equal(res.accuracy, top1 / 4);
    assert.equal(res.top5, top5 / 4);
    await assert.rejects(trainer.step({ images: views.images, labels, size: 4, crops }), /crops/);
    trainer.dispose();
  });
});
