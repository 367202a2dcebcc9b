import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { relError, values, onWasmThenCpu } from './testing';
import { RELU_GRAD } from './relu-grad';

function reluGrad(n: number): Float32Array {
  return tf.tidy(() => {
    // Exact zeros included: the gradient there is 0, as tfjs' step(x) gives.
    const x = tf.tensor1d(values(n, 41)).mul(tf.tensor1d(values(n, 42)).greater(0).cast('float32'));
    const probe = tf.tensor1d(values(n, 43));
    return tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(tf.relu(xx), probe)))(x).dataSync() as Float32Array;
  });
}

test('one-pass ReLU gradient matches cpu, including sizes that are not a multiple of 4', async () => {
  for (const n of [1, 3, 4, 17, 1000, 4099]) {
    await initBackend({ backend: 'wasm' });
    const info = await tf.profile(() => {
      reluGrad(n);
    });
    assert.ok(info.kernels.some((k) => k.name === RELU_GRAD), `n=${n}: the wasm run used ${RELU_GRAD}`);
    const { wasm, cpu } = await onWasmThenCpu(() => reluGrad(n));
    assert.ok(relError(wasm, cpu) === 0, `n=${n}: rel err ${relError(wasm, cpu)}`);
  }
});
