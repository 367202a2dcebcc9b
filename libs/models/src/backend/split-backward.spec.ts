import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tf } from './tf';
import { recordForward } from './split-backward';
import { deferBatchNormStats } from './batch-norm-layer';
import { initBackend } from './init-backend';
import { onWasmThenCpu, relError, values } from './testing';
import { createModel, createModelPart, modelSections, sectionsOwner } from '../zoo';

/**
 * A later backward pass from a recorded forward gives what tf.grads gives at once: checked on
 * a ResNet stage (convolutions, batch norm in training mode, residual adds: the kernels and
 * gradients a pipeline stage runs) for the input and every weight, with two forwards pending
 * and backpropagated in the other order, as 1F1B does.
 */
test('recordForward + backward equal tf.grads, with two forwards pending, on wasm and cpu, leaving no tensor behind', async () => {
  const opts = { inputSize: 16, numClasses: 4, seed: 2 };
  const stage = modelSections('resnet8', opts).slice(1, 3).map((s) => s.name); // layer1_0, layer2_0
  const run = () => {
    const part = createModelPart('resnet8', opts, sectionsOwner(stage));
    const before = tf.memory().numTensors;
    try {
      const vars = part.model.trainableWeights.map((w) => w.read());
      const [shape] = part.inputs.map((p) => p.shape);
      const xs = [0, 1].map((k) => tf.tensor(values(3 * shape.reduce((a, b) => a * b, 1), 10 + k), [3, ...shape]));
      const outShape = [3, ...part.outputs[0].shape];
      const dys = [0, 1].map((k) => tf.tensor(values(outShape.reduce((a, b) => a * b, 1), 20 + k), outShape));
      const recorded = xs.map((x) => recordForward(() => part.model.apply(x, { training: true }) as tf.Tensor));
      // 1F1B order: the later micro-batch's backward may come first
      const got = [1, 0].map((k) => recorded[k].backward([dys[k]], [xs[k], ...vars]));
      const loss = (x: tf.Tensor, k: number) => tf.sum(tf.mul(part.model.apply(x, { training: true }) as tf.Tensor, dys[k])) as tf.Scalar;
      const want = [1, 0].map((k) => tf.grads((x: tf.Tensor) => loss(x, k))([xs[k]]));
      const wantVars = [1, 0].map((k) => {
        const { value, grads } = tf.variableGrads(() => loss(xs[k], k), vars as tf.Variable[]);
        value.dispose();
        return (vars as tf.Variable[]).map((v) => grads[v.name]);
      });
      const errs = got.map((g, i) => [
        relError(g[0]!.dataSync(), want[i][0].dataSync()),
        ...vars.map((_, j) => relError(g[j + 1]!.dataSync(), wantVars[i][j].dataSync())),
      ]);
      const inputGrad = Array.from(got[1][0]!.dataSync().slice(0, 8));
      tf.dispose([...xs, ...dys, ...got.flat().filter((t): t is tf.Tensor => t !== null), ...want.flat(), ...wantVars.flat()]);
      assert.equal(tf.memory().numTensors, before, 'recordings, gradients and references all released');
      return { errs, inputGrad, vars: vars.length };
    } finally {
      part.model.dispose();
    }
  };
  const { wasm, cpu } = await onWasmThenCpu(run);
  for (const [backend, r] of [['wasm', wasm], ['cpu', cpu]] as const) {
    assert.ok(r.vars > 10, 'the stage has its convolutions and batch norms');
    const worst = Math.max(...r.errs.flat());
    assert.ok(worst < 1e-5, `${backend}: split backward vs tf.grads: worst relative error ${worst}`);
  }
  assert.ok(relError(wasm.inputGrad, cpu.inputGrad) < 1e-4, 'wasm and cpu agree on the input gradient');
});

/**
 * The split backward (input gradient first, weight gradients after an await, as a pipeline
 * stage sends upstream in between) gives bitwise the tensors of one backward() on the same
 * recording, leaves nothing behind, and a released split frees what it held.
 */
test('backwardSplit: the same gradients as backward(), bitwise, with an await between its halves; release frees them', async () => {
  const opts = { inputSize: 16, numClasses: 4, seed: 5 };
  const stage = modelSections('resnet8', opts).slice(1, 3).map((s) => s.name);
  for (const backend of ['wasm', 'cpu'] as const) {
    await initBackend({ backend });
    const part = createModelPart('resnet8', opts, sectionsOwner(stage));
    try {
      const vars = part.model.trainableWeights.map((w) => w.read());
      const shape = [3, ...part.inputs[0].shape];
      const outShape = [3, ...part.outputs[0].shape];
      const x = tf.tensor(values(shape.reduce((a, b) => a * b, 1), 31), shape);
      const dy = tf.tensor(values(outShape.reduce((a, b) => a * b, 1), 32), outShape);
      const before = tf.memory().numTensors;
      const once = recordForward(() => part.model.apply(x, { training: false }) as tf.Tensor).backward([dy], [x, ...vars]);
      const split = recordForward(() => part.model.apply(x, { training: false }) as tf.Tensor).backwardSplit([dy], [x], vars);
      const dx = Array.from(await split.inputs[0]!.data());
      await new Promise<void>((resolve) => setImmediate(resolve));
      const weights = split.weights();
      assert.deepEqual(dx, Array.from(once[0]!.dataSync()), `${backend}: the input gradient`);
      assert.equal(weights.length, vars.length);
      weights.forEach((g, i) => assert.deepEqual(Array.from(g!.dataSync()), Array.from(once[i + 1]!.dataSync()), `${backend}: gradient of weight ${i}`));
      assert.ok(weights.some((g) => g!.dataSync().some((v) => v !== 0)), 'the weight gradients are not all zero');
      assert.throws(() => split.weights(), /has ended/);
      tf.dispose([...once, split.inputs[0], ...weights].filter((t): t is tf.Tensor => t !== null));
      assert.equal(tf.memory().numTensors, before, `${backend}: nothing left behind`);
      const dropped = recordForward(() => part.model.apply(x, { training: false }) as tf.Tensor).backwardSplit([dy], [x], vars);
      dropped.release();
      assert.equal(tf.memory().numTensors, before, `${backend}: a released split frees its tensors`);
      tf.dispose([x, dy]);
    } finally {
      part.model.dispose();
    }
  }
});

test('a released recording frees its tensors; a second backward is an error', async () => {
  await tf.setBackend('cpu');
  const w = tf.variable(tf.tensor1d([1, 2, 3]));
  const before = tf.memory().numTensors;
  const rec = recordForward(() => tf.sum(tf.mul(tf.square(w), 2)));
  rec.release();
  assert.equal(tf.memory().numTensors, before);
  const rec2 = recordForward(() => tf.sum(tf.mul(tf.square(w), 2)));
  const [g] = rec2.backward([null], [w]);
  assert.equal(g, null, 'a null gradient for the only output: nothing reaches w');
  assert.throws(() => rec2.backward([tf.scalar(1)], [w]), /already backpropagated/);
  const rec3 = recordForward(() => tf.sum(tf.mul(tf.square(w), 2)));
  const [g3] = rec3.backward([tf.scalar(1)], [w]);
  assert.deepEqual(Array.from(g3!.dataSync()), [4, 8, 12]);
  w.dispose();
  g3!.dispose();
});

/**
 * Deferred batch norm: three micro-batches recorded, then one commit. Each layer's moving
 * statistics take one momentum step towards the pooled moments of its three passes (checked
 * in float64 against what the passes recorded), and the first layer, whose input does not
 * depend on any normalisation, moves exactly as in one stock pass over the whole batch. On
 * wasm (the fused kernel) and cpu (the stock normalisation).
 */
test('deferred batch-norm statistics: three passes and one commit take one step to the pooled moments', async () => {
  const run = () => {
    const opts = { inputSize: 8, numClasses: 3, seed: 4 };
    const deferred = createModel('resnet8', opts);
    const whole = createModel('resnet8', opts);
    try {
      const x = tf.tensor4d(values(12 * 8 * 8 * 3, 9), [12, 8, 8, 3]);
      const before = tf.memory().numTensors;
      const stats = (m: tf.LayersModel) => new Map(m.weights.filter((w) => /moving_(mean|variance)/.test(w.originalName)).map((w) => [w.originalName, Float64Array.from(w.read().dataSync())]));
      const start = stats(deferred);
      const d = deferBatchNormStats(deferred);
      for (const [a, b] of [[0, 5], [5, 9], [9, 12]]) tf.tidy(() => deferred.apply(tf.slice(x, a, b - a), { training: true }) as tf.Tensor).dispose();
      const passes = d.recorded();
      assert.equal(d.passes, 3);
      d.commit();
      const after = stats(deferred);
      // float64: v ← v − (v − pooled)·(1 − 0.9), pooled = Σ nᵢ(σᵢ², μᵢ) as a whole batch's moments
      let worst = 0;
      for (const [layer, list] of passes) {
        const n = list.reduce((a, p) => a + p.rows, 0);
        const mean = list[0].mean.map((_, j) => list.reduce((a, p) => a + p.rows * p.mean[j], 0) / n);
        const variance = list[0].mean.map((_, j) => list.reduce((a, p) => a + p.rows * (p.variance[j] + (p.mean[j] - mean[j]) ** 2), 0) / n);
        for (const [kind, pooled] of [['moving_mean', mean], ['moving_variance', variance]] as const) {
          const key = `${layer}/${kind}`;
          const want = start.get(key)!.map((v, j) => v - (v - pooled[j]) * 0.1);
          worst = Math.max(worst, relError(after.get(key)!, want));
        }
      }
      tf.tidy(() => whole.apply(x, { training: true }) as tf.Tensor).dispose();
      const first = ['bn1/moving_mean', 'bn1/moving_variance'].map((k) => relError(after.get(k)!, stats(whole).get(k)!));
      d.end();
      const left = tf.memory().numTensors - before;
      x.dispose();
      return { worst, first, layers: passes.size, left, moved: relError(after.get('bn1/moving_mean')!, start.get('bn1/moving_mean')!) };
    } finally {
      deferred.dispose();
      whole.dispose();
    }
  };
  for (const backend of ['wasm', 'cpu'] as const) {
    await initBackend({ backend });
    const r = run();
    assert.equal(r.left, 0, `${backend}: the deferral released what it recorded`);
    assert.equal(r.layers, 9, 'every batch norm of resnet8 recorded its passes');
    assert.ok(r.moved > 1e-3, `${backend}: the commit moved the statistics`);
    assert.ok(r.worst < 1e-5, `${backend}: committed statistics vs float64 pooling of the passes: ${r.worst}`);
    assert.ok(Math.max(...r.first) < 1e-5, `${backend}: the first batch norm vs one pass over the whole batch: ${r.first}`);
  }
});
