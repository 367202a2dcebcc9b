import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { onWasmThenCpu, relError, values } from './testing';

const CASES: [number[], number[], boolean, boolean][] = [
  [[5, 300], [5, 40], true, false], // dense dW: xᵀ·dy
  [[5, 40], [300, 40], false, true], // dense dx: dy·Wᵀ with a large W
  [[50, 40], [3, 40], false, true], // small b: stock path
  [[7, 9], [9, 4], false, false],
  [[9, 7], [4, 9], true, true],
  [[1, 9, 7], [1, 9, 4], true, false],
  [[2, 9, 7], [2, 9, 4], true, false], // batched: stock path
];

function run(): Float32Array[] {
  return tf.tidy(() =>
    CASES.map(([sa, sb, ta, tb], i) => {
      const a = tf.tensor(values(tf.util.sizeFromShape(sa), 30 + i), sa);
      const b = tf.tensor(values(tf.util.sizeFromShape(sb), 60 + i), sb);
      return tf.matMul(a, b, ta, tb).dataSync() as Float32Array;
    }),
  );
}

test('BatchMatMul with transposed operands matches cpu on wasm', async () => {
  const { wasm, cpu } = await onWasmThenCpu(run);
  for (let i = 0; i < CASES.length; i++) {
    assert.equal(wasm[i].length, cpu[i].length);
    assert.ok(relError(wasm[i], cpu[i]) < 1e-5, `case ${i}: rel err ${relError(wasm[i], cpu[i])}`);
  }
});

test('dense-layer gradients match cpu on wasm', async () => {
  const grads = () =>
    tf.tidy(() => {
      const x = tf.tensor2d(values(4 * 300, 90), [4, 300]);
      const w = tf.tensor2d(values(300 * 50, 91), [300, 50]);
      const probe = tf.tensor2d(values(4 * 50, 92), [4, 50]);
      return tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(tf.matMul(xx, ww), probe)))([x, w]).map((g) => g.dataSync() as Float32Array);
    });
  const { wasm, cpu } = await onWasmThenCpu(grads);
  for (let i = 0; i < 2; i++) assert.ok(relError(wasm[i], cpu[i]) < 1e-5, `grad ${i}: rel err ${relError(wasm[i], cpu[i])}`);
});
