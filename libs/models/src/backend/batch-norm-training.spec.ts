import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { relError, values, onWasmThenCpu } from './testing';
import { BN_TRAINING } from './batch-norm-training';
import { FleetBatchNormalization } from './batch-norm-layer';

const EPS = 1e-5;

/** y, batch mean and variance: the fused kernel on wasm, tfjs-layers' ops (moments + batchNorm) elsewhere. */
function bnTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor[] {
  if (tf.getBackend() === 'wasm') {
    return tf.engine().runKernel(BN_TRAINING, { x, scale: gamma, offset: beta }, { varianceEpsilon: EPS } as never) as tf.Tensor[];
  }
  const axes = x.shape.slice(0, -1).map((_, i) => i);
  const { mean, variance } = tf.moments(x, axes);
  return [tf.batchNorm(x, mean, variance, beta, gamma, EPS), mean, variance];
}

/** Forward outputs and the gradients of a loss that reads y, the mean and the variance. */
function run(shape: number[], offset: number): Float32Array[] {
  const c = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    // A large common offset checks that the variance does not cancel catastrophically.
    const x = tf.tensor(values(size, 21), shape).mul(2).add(offset);
    const gamma = tf.tensor1d(values(c, 22)).add(1.5);
    const beta = tf.tensor1d(values(c, 23));
    const probe = tf.tensor(values(size, 24), shape);
    const [pm, pv] = [tf.tensor1d(values(c, 25)), tf.tensor1d(values(c, 26))];
    const outs = bnTraining(x, gamma, beta);
    const loss = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const [y, mean, variance] = bnTraining(xx, g, b);
      return tf.addN([tf.sum(tf.mul(y, probe)), tf.sum(tf.mul(mean, pm)), tf.sum(tf.mul(variance, pv))]) as tf.Scalar;
    };
    const onlyY = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(bnTraining(xx, g, b)[0], probe)) as tf.Scalar;
    return [...outs, ...tf.grads(loss)([x, gamma, beta]), ...tf.grads(onlyY)([x, gamma, beta])].map((t) => t.dataSync() as Float32Array);
  });
}

/** y, mean and variance of run()'s input computed in float64 from the same float32 data. */
function float64Forward(shape: number[], offset: number): Float64Array[] {
  const c = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  const rows = size / c;
  const x32 = tf.tidy(() => tf.tensor(values(size, 21), shape).mul(2).add(offset).dataSync() as Float32Array);
  const gamma = tf.tidy(() => tf.tensor1d(values(c, 22)).add(1.5).dataSync() as Float32Array);
  const beta = values(c, 23);
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < size; i++) mean[i % c] += x32[i] / rows;
  for (let i = 0; i < size; i++) variance[i % c] += (x32[i] - mean[i % c]) ** 2 / rows;
  const y = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    const j = i % c;
    y[i] = ((x32[i] - mean[j]) / Math.sqrt(variance[j] + EPS)) * gamma[j] + beta[j];
  }
  return [y, mean, variance];
}

const NAMES = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'dx (y only)', 'dgamma (y only)', 'dbeta (y only)'];

test('fused batch-norm training kernel and its gradient match tfjs-layers ops on cpu', async () => {
  // Row counts below, at and above the kernel's 64-row blocks; C from 4 to 64.
  const shapes = [[4, 7, 5, 8], [2, 9, 9, 16], [3, 1, 1, 4], [130, 12], [2, 8, 8, 64], [1, 3, 3, 4]];
  for (const shape of shapes) {
    for (const offset of [0.5, 100]) {
      const { wasm, cpu } = await onWasmThenCpu(() => run(shape, offset));
      // Data offset by 100: cpu's float32 moments are themselves only good to ~1e-5 there,
      // so the forward outputs are checked against float64 and the gradients more loosely.
      const exact = offset > 10 ? float64Forward(shape, offset) : null;
      for (let i = 0; i < NAMES.length; i++) {
        const err = exact && i < 3 ? relError(wasm[i], exact[i]) : relError(wasm[i], cpu[i]);
        const tol = exact && i >= 3 ? 1e-4 : 1e-5;
        assert.ok(err < tol, `${NAMES[i]} for ${shape} offset ${offset}: rel err ${err}`);
      }
    }
  }
});

/** Output, trainable-weight gradients and moving statistics of one training call of the layer. */
function layerStep(shape: number[]): Float32Array[] {
  const layer = new FleetBatchNormalization({ momentum: 0.9, epsilon: EPS, gammaInitializer: 'ones', betaInitializer: 'zeros' });
  const size = shape.reduce((a, b) => a * b, 1);
  const x = tf.tensor(values(size, 31), shape).mul(2).add(0.3);
  const probe = tf.tensor(values(size, 32), shape);
  layer.build(x.shape);
  const vars = layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { value, grads } = tf.variableGrads(
    () => tf.sum(tf.mul(layer.apply(x, { training: true }) as tf.Tensor, probe)) as tf.Scalar,
    vars,
  );
  const out = [value, ...vars.map((v) => grads[v.name]), ...layer.getWeights().slice(2)].map((t) => t.dataSync() as Float32Array);
  tf.dispose([x, probe, value, ...Object.values(grads), ...layer.weights.map((w) => w.read())]);
  return out;
}

test('FleetBatchNormalization trains like the stock layer: loss, gradients, moving mean and variance', async () => {
  // 6 channels: not a multiple of 4, so the layer falls back to the stock ops.
  for (const shape of [[3, 5, 7, 8], [65, 16], [2, 3, 3, 6]]) {
    await initBackend({ backend: 'wasm' });
    const info = await tf.profile(() => tf.dispose(layerStep(shape).map((a) => tf.tensor(a))));
    const fused = shape[shape.length - 1] % 4 === 0;
    assert.equal(info.kernels.some((k) => k.name === BN_TRAINING), fused, `fused kernel used for ${shape}`);
    // Not onWasmThenCpu: the layer's own variables outlive the step, so its leak check can't apply.
    const wasm = layerStep(shape);
    await initBackend({ backend: 'cpu' });
    const cpu = layerStep(shape);
    const names = ['loss', 'dgamma', 'dbeta', 'moving mean', 'moving variance'];
    assert.equal(wasm.length, names.length);
    for (let i = 0; i < names.length; i++) {
      const err = relError(wasm[i], cpu[i]);
      assert.ok(err < 1e-5, `${names[i]} for ${shape}: rel err ${err}`);
    }
  }
});

test('FleetBatchNormalization serialises as the stock BatchNormalization', () => {
  const layer = new FleetBatchNormalization({ momentum: 0.9 });
  assert.equal(layer.getClassName(), 'BatchNormalization');
  assert.equal(FleetBatchNormalization.className, 'BatchNormalization');
});
