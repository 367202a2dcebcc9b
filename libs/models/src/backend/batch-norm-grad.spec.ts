import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { onWasmThenCpu, relError, values } from './testing';

/** Batch norm in training mode exactly as tfjs-layers computes it (moments + batchNorm). */
function trainingBatchNorm(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D): tf.Tensor {
  const { mean, variance } = tf.moments(x, [0, 1, 2]);
  return tf.batchNorm(x, mean, variance, beta, gamma, 1e-5);
}

function run(shape: [number, number, number, number]): Float32Array[] {
  const c = shape[3];
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tidy(() => {
    const x = tf.tensor4d(values(size, 11), shape).mul(3).add(0.5) as tf.Tensor4D;
    const gamma = tf.tensor1d(values(c, 12)).add(1.5) as tf.Tensor1D;
    const beta = tf.tensor1d(values(c, 13));
    const probe = tf.tensor4d(values(size, 14), shape);
    const loss = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) =>
      tf.sum(tf.mul(trainingBatchNorm(xx as tf.Tensor4D, g as tf.Tensor1D, b as tf.Tensor1D), probe));
    const grads = tf.grads(loss)([x, gamma, beta]);
    const y = trainingBatchNorm(x, gamma, beta);
    const frozen = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.batchNorm(xx, gamma.mul(0.1), gamma, beta, gamma, 1e-3), probe)))(x);
    return [
      y,
      ...grads,
      frozen,
      tf.sum(x, [0, 1, 2]),
      tf.mean(x, [0, 1]),
      tf.sum(x, [0], true),
      tf.sum(x, [1, 2]),
    ].map((t) => t.dataSync() as Float32Array);
  });
}

const NAMES = ['y', 'dx', 'dgamma', 'dbeta', 'dx frozen BN', 'sum[0,1,2]', 'mean[0,1]', 'sum[0] keepDims', 'sum[1,2]'];

test('batch norm forward, training gradients and leading-axis reductions match cpu', async () => {
  for (const shape of [[4, 7, 5, 6], [2, 9, 9, 16], [3, 1, 1, 5]] as [number, number, number, number][]) {
    const { wasm, cpu } = await onWasmThenCpu(() => run(shape));
    for (let i = 0; i < NAMES.length; i++) {
      const err = relError(wasm[i], cpu[i]);
      assert.ok(err < 1e-5, `${NAMES[i]} for ${shape}: rel err ${err}`);
    }
  }
});

test('the wasm batch-norm path no longer uses Tile', async () => {
  await initBackend({ backend: 'wasm' });
  const x = tf.randomNormal([2, 4, 4, 3]) as tf.Tensor4D;
  const gamma = tf.ones([3]) as tf.Tensor1D;
  const beta = tf.zeros([3]) as tf.Tensor1D;
  const info = await tf.profile(() => {
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(trainingBatchNorm(xx as tf.Tensor4D, gamma, beta))))(x);
    g.dispose();
  });
  const names = info.kernels.map((k) => k.name);
  assert.ok(names.includes('FusedBatchNorm'));
  assert.ok(!names.includes('Tile'), `kernels: ${names.join(',')}`);
  tf.dispose([x, gamma, beta]);
});
