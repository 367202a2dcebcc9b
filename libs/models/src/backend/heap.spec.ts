import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tf } from './tf';
import { accumulateInto } from './heap';
import { initBackend } from './init-backend';

// Three "micro-batch gradients" summed in place against the same sums over data() copies,
// on the wasm heap (a view) and on cpu (dataSync): bitwise equal, nothing left allocated.
for (const backend of ['wasm', 'cpu'] as const) {
  test(`accumulateInto on ${backend} sums exactly what data() gives`, async () => {
    await initBackend({ backend });
    const n = 10_007;
    const before = tf.memory().numTensors;
    const grads = [1, 2, 3].map((seed) => tf.tidy(() => tf.mul(tf.randomNormal([n], 0, 1, 'float32', seed), tf.scalar(1 / 3))));
    const expected = new Float32Array(n);
    for (const [k, g] of grads.entries()) {
      const d = (await g.data()) as Float32Array;
      if (k === 0) expected.set(d);
      else for (let i = 0; i < n; i++) expected[i] += d[i];
    }
    const into = new Float32Array(n).fill(7); // overwritten by the first
    grads.forEach((g, k) => accumulateInto(into, g, k === 0));
    assert.deepEqual(into, expected);
    assert.throws(() => accumulateInto(new Float32Array(3), grads[0], false), /float32 tensor of 3 values, got float32 of 10007/);
    tf.dispose(grads);
    assert.equal(tf.memory().numTensors, before);
  });
}
