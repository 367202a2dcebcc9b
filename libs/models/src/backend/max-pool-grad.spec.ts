import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { onWasmThenCpu, relError, values } from './testing';

interface Case {
  shape: [number, number, number, number];
  size: number;
  stride: number;
  pad: 'same' | 'valid' | number;
}

const CASES: Case[] = [];
// 3 channels: padded to 4 for the kernel.
for (const shape of [[2, 9, 8, 4], [1, 13, 11, 12], [2, 7, 7, 3]] as [number, number, number, number][]) {
  for (const [size, stride] of [[2, 2], [3, 2], [3, 1], [5, 3], [1, 2]]) {
    for (const pad of ['same', 'valid', 1] as const) {
      if (typeof pad === 'number' && pad >= size) continue;
      CASES.push({ shape, size, stride, pad });
    }
  }
}

function poolGrads(quantise: boolean): Float32Array[] {
  return CASES.map((c) => tf.tidy(() => {
    const n = c.shape.reduce((a, b) => a * b, 1);
    // Quantised inputs have many ties: the first maximum in the window must win.
    const raw = tf.tensor4d(values(n, 51), c.shape);
    const x = (quantise ? tf.round(tf.mul(raw, 2)) : raw) as tf.Tensor4D;
    const probe = tf.tensor(values(tf.maxPool(x, c.size, c.stride, c.pad).size, 52));
    const f = (xx: tf.Tensor) => tf.sum(tf.mul(tf.maxPool(xx as tf.Tensor4D, c.size, c.stride, c.pad), probe.reshape(tf.maxPool(x, c.size, c.stride, c.pad).shape)));
    return tf.grad(f)(x).dataSync() as Float32Array;
  }));
}

test('max-pool gradient matches cpu over sizes, strides, paddings and ties', async () => {
  assert.ok(CASES.length >= 40);
  for (const quantise of [false, true]) {
    const { wasm, cpu } = await onWasmThenCpu(() => poolGrads(quantise));
    CASES.forEach((c, i) => {
      const err = relError(wasm[i], cpu[i]);
      assert.ok(err < 1e-6, `x=${c.shape} size=${c.size} stride=${c.stride} pad=${c.pad} ties=${quantise}: rel err ${err}`);
    });
  }
});
