import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { relError, stridedConvCases, values, type ConvCase } from './testing';
import { WasmOps } from './wasm-ops';
import { conv2dBackpropFilterXnnpack } from './conv-grad-kernels';
import { conv2dBackpropFilterSimd } from './conv-filter-grad-simd';

type Case = ConvCase;

const CASES: Case[] = stridedConvCases();
// Filter-gradient tiling: a dW tile above 128 KiB is split by channels (64×64×3×3), and
// rows are processed in chunks of about 48 KiB (40-wide rows of 16 channels).
CASES.push({ shape: [1, 5, 6, 64], cout: 64, k: 3, stride: 1, pad: 'same' });
CASES.push({ shape: [1, 7, 5, 72], cout: 40, k: 3, stride: 2, pad: 'valid' });
CASES.push({ shape: [2, 40, 40, 16], cout: 16, k: 3, stride: 1, pad: 'same' });
CASES.push({ shape: [2, 41, 39, 16], cout: 32, k: 3, stride: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] });

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
  assert.ok(CASES.length >= 90);
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

test('both filter-gradient paths (SIMD and the XNNPACK fallback) match cpu on every case', async () => {
  const inputs = (c: Case) => {
    const [n, h, w, cin] = c.shape;
    const filterShape: [number, number, number, number] = [c.k, c.k, cin, c.cout];
    const info = tf.backend_util.computeConv2DInfo(c.shape, filterShape, c.stride, 1, c.pad);
    const x = tf.tensor4d(values(n * h * w * cin, 1), c.shape);
    const dy = tf.tensor4d(values(info.outShape.reduce((a, b) => a * b, 1), 3), info.outShape);
    return { x, dy, info };
  };
  await initBackend({ backend: 'cpu' });
  const expected = CASES.map((c) => {
    const { x, dy } = inputs(c);
    const ref = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, {
      strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: [c.k, c.k, c.shape[3], c.cout],
    } as never) as tf.Tensor;
    const out = ref.dataSync() as Float32Array;
    tf.dispose([x, dy, ref]);
    return out;
  });
  await initBackend({ backend: 'wasm' });
  const ops = new WasmOps(tf.backend() as unknown as WasmOps['backend']);
  for (const [name, path] of [['simd', conv2dBackpropFilterSimd], ['xnnpack', conv2dBackpropFilterXnnpack]] as const) {
    CASES.forEach((c, i) => {
      const { x, dy, info } = inputs(c);
      try {
        const dw = path(ops, x, dy, info);
        assert.ok(dw, `${name} declined x=${c.shape} k=${c.k}`);
        const err = relError(ops.withHeap([dw], ([v]) => v.slice()), expected[i]);
        assert.ok(err < 1e-5, `${name} dW x=${c.shape} k=${c.k} s=${c.stride} pad=${JSON.stringify(c.pad)}: rel err ${err}`);
      } finally {
        ops.dispose();
        tf.dispose([x, dy]);
      }
    });
  }
});
