import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { relError, values } from './testing';

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

interface Case {
  shape: [number, number, number, number];
  cout: number;
  k: number;
  stride: number;
  pad: Pad;
}

const SHAPES: [number, number, number, number][] = [
  [2, 13, 12, 3],
  [1, 11, 15, 2],
];
const CASES: Case[] = [];
for (const shape of SHAPES) {
  for (const stride of [1, 2, 4]) {
    for (const k of [1, 3, 5, 7, 11]) {
      const pads: Pad[] = ['same', 'valid'];
      if (k > 1) pads.push([[0, 0], [k >> 1, k >> 1], [1, k - 1], [0, 0]]);
      for (const pad of pads) CASES.push({ shape, cout: 4, k, stride, pad });
    }
  }
}

function gradients(c: Case): { dw: Float32Array; dx: Float32Array } {
  const [n, h, w, cin] = c.shape;
  const filterShape: [number, number, number, number] = [c.k, c.k, cin, c.cout];
  const info = tf.backend_util.computeConv2DInfo(c.shape, filterShape, c.stride, 1, c.pad);
  const x = tf.tensor4d(values(n * h * w * cin, 1), c.shape);
  const filter = tf.tensor4d(values(c.k * c.k * cin * c.cout, 2), filterShape);
  const dy = tf.tensor4d(values(info.outShape.reduce((a, b) => a * b, 1), 3), info.outShape);
  const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined };
  const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, { ...attrs, filterShape } as never) as tf.Tensor;
  const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...attrs, inputShape: c.shape } as never) as tf.Tensor;
  assert.deepEqual(dw.shape, filterShape);
  assert.deepEqual(dx.shape, c.shape);
  const out = { dw: dw.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  tf.dispose([x, filter, dy, dw, dx]);
  return out;
}

test('wasm convolution gradients match the cpu backend over strides, kernels and paddings', async () => {
  await initBackend({ backend: 'wasm' });
  const wasm = CASES.map(gradients);
  const leaked = tf.memory().numTensors;
  await initBackend({ backend: 'cpu' });
  const cpu = CASES.map(gradients);
  for (let i = 0; i < CASES.length; i++) {
    const c = CASES[i];
    const label = `x=${c.shape} k=${c.k} s=${c.stride} pad=${JSON.stringify(c.pad)}`;
    assert.ok(relError(wasm[i].dw, cpu[i].dw) < 1e-5, `dW ${label}: rel err ${relError(wasm[i].dw, cpu[i].dw)}`);
    assert.ok(relError(wasm[i].dx, cpu[i].dx) < 1e-5, `dx ${label}: rel err ${relError(wasm[i].dx, cpu[i].dx)}`);
  }
  assert.ok(CASES.length >= 60);
  await initBackend({ backend: 'wasm' });
  assert.equal(leaked, tf.memory().numTensors);
});

test('the wasm kernels free their intermediates', async () => {
  await initBackend({ backend: 'wasm' });
  const backend = tf.backend() as unknown as { dataIdMap: { numDataIds(): number } };
  gradients(CASES[20]);
  const before = backend.dataIdMap.numDataIds();
  gradients(CASES[20]);
  assert.equal(backend.dataIdMap.numDataIds(), before);
});
