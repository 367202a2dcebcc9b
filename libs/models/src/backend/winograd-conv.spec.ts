import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { relError, values, onWasmThenCpu } from './testing';
import { WasmOps } from './wasm-ops';
import { conv3x3Winograd } from './winograd-conv';
import { conv2dBackpropFilterWinograd } from './winograd-filter-grad';

type Pad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

interface Case {
  shape: [number, number, number, number];
  cout: number;
  pad: Pad;
}

// Maps from 1×1 up, odd and even sides (the last 2×2 tile clipped), channel counts that are
// and aren't multiples of 4 (padded input channels, sliced output channels) and of 8 (U's
// padded columns), several batch sizes and tile blocks (64×64 maps 40 tiles per block).
const CASES: Case[] = [];
const MAPS: [number, number][] = [[1, 1], [2, 2], [3, 5], [8, 8], [7, 6]];
const CHANNELS: [number, number][] = [[1, 1], [3, 5], [5, 17], [16, 16], [17, 3], [64, 64]];
MAPS.forEach(([h, w], i) => {
  CHANNELS.forEach(([cin, cout], j) => {
    const n = 1 + ((i + j) % 3);
    CASES.push({ shape: [n, h, w, cin], cout, pad: 'same' });
    if (h >= 3 && w >= 3) CASES.push({ shape: [n, h, w, cin], cout, pad: 'valid' });
  });
});
CASES.push({ shape: [2, 9, 11, 4], cout: 8, pad: [[0, 0], [2, 0], [0, 1], [0, 0]] });
CASES.push({ shape: [5, 17, 13, 16], cout: 32, pad: 'same' });
CASES.push({ shape: [3, 16, 16, 64], cout: 64, pad: 'same' });

function inputs(c: Case) {
  const [n, h, w, cin] = c.shape;
  const filterShape: [number, number, number, number] = [3, 3, cin, c.cout];
  const info = tf.backend_util.computeConv2DInfo(c.shape, filterShape, 1, 1, c.pad);
  const x = tf.tensor4d(values(n * h * w * cin, 1), c.shape);
  const filter = tf.tensor4d(values(9 * cin * c.cout, 2), filterShape);
  const dy = tf.tensor4d(values(info.outShape.reduce((a, b) => a * b, 1), 3), info.outShape);
  return { x, filter, dy, info };
}

/** Forward and input gradient through the registered kernels (Conv2D, FusedConv2D, Conv2DBackpropInput). */
function throughKernels(c: Case): { y: Float32Array; fused: Float32Array; dx: Float32Array } {
  const { x, filter, dy } = inputs(c);
  const attrs = { strides: 1, pad: c.pad, dataFormat: 'NHWC', dilations: 1, dimRoundingMode: undefined };
  const y = tf.engine().runKernel(tf.Conv2D, { x, filter }, attrs as never) as tf.Tensor;
  const fused = tf.engine().runKernel(tf.FusedConv2D, { x, filter }, { ...attrs, activation: 'linear' } as never) as tf.Tensor;
  const dx = tf.engine().runKernel(tf.Conv2DBackpropInput, { dy, filter }, { ...attrs, inputShape: c.shape } as never) as tf.Tensor;
  assert.deepEqual(dx.shape, c.shape);
  const out = { y: y.dataSync() as Float32Array, fused: fused.dataSync() as Float32Array, dx: dx.dataSync() as Float32Array };
  tf.dispose([x, filter, dy, y, fused, dx]);
  return out;
}

const label = (c: Case) => `x=${c.shape} cout=${c.cout} pad=${JSON.stringify(c.pad)}`;

test('Winograd forward and input-gradient kernels match the cpu backend', async () => {
  const { wasm, cpu } = await onWasmThenCpu(() => CASES.map(throughKernels));
  let worst = 0;
  CASES.forEach((c, i) => {
    for (const key of ['y', 'fused', 'dx'] as const) {
      const err = relError(wasm[i][key], cpu[i][key]);
      worst = Math.max(worst, err);
      assert.ok(err < 1e-5, `${key} ${label(c)}: rel err ${err}`);
    }
  });
  assert.ok(worst > 0, 'expected rounding differences from a different summation order');
});

/**
 * `reference` for every case on the cpu backend, then `check` of every case on wasm, given the
 * case's inputs and a WasmOps to call the Winograd kernels with (both released after each case).
 */
async function eachCaseAgainstCpu<T>(reference: (c: Case) => T, check: (ops: WasmOps, c: Case, inp: ReturnType<typeof inputs>, expected: T) => void): Promise<void> {
  await initBackend({ backend: 'cpu' });
  const expected = CASES.map(reference);
  await initBackend({ backend: 'wasm' });
  const ops = new WasmOps(tf.backend() as unknown as WasmOps['backend']);
  CASES.forEach((c, i) => {
    const inp = inputs(c);
    try {
      check(ops, c, inp, expected[i]);
    } finally {
      ops.dispose();
      tf.dispose([inp.x, inp.filter, inp.dy]);
    }
  });
}

// The registered kernels fall back to XNNPACK silently; call the Winograd kernel directly so
// the comparison above can't pass on the fallback alone.
test('conv3x3Winograd itself (forward and flipped) matches cpu on every case', async () => {
  await eachCaseAgainstCpu(throughKernels, (ops, c, { x, filter, dy, info }, expected) => {
    const fwd = { height: info.outHeight, width: info.outWidth, padTop: info.padInfo.top, padLeft: info.padInfo.left };
    const y = conv3x3Winograd(ops, x, filter, fwd);
    const bwd = { height: c.shape[1], width: c.shape[2], padTop: 2 - info.padInfo.top, padLeft: 2 - info.padInfo.left };
    const dx = conv3x3Winograd(ops, dy, filter, bwd, true);
    assert.ok(y && dx, `declined ${label(c)}`);
    assert.deepEqual(y.shape, info.outShape);
    assert.deepEqual(dx.shape, c.shape);
    const [yv, dxv] = ops.withHeap([y, dx], (views) => views.map((v) => v.slice()));
    assert.ok(relError(yv, expected.y) < 1e-5, `y ${label(c)}: rel err ${relError(yv, expected.y)}`);
    assert.ok(relError(dxv, expected.dx) < 1e-5, `dx ${label(c)}: rel err ${relError(dxv, expected.dx)}`);
  });
});

test('conv2dBackpropFilterWinograd matches the cpu filter gradient on every case', async () => {
  const cpuGrad = (c: Case) => {
    const { x, filter, dy } = inputs(c);
    const attrs = { strides: 1, pad: c.pad, dataFormat: 'NHWC', dimRoundingMode: undefined, filterShape: filter.shape };
    const dw = tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs as never) as tf.Tensor;
    const out = dw.dataSync() as Float32Array;
    tf.dispose([x, filter, dy, dw]);
    return out;
  };
  await eachCaseAgainstCpu(cpuGrad, (ops, c, { x, filter, dy, info }, expected) => {
    const dw = conv2dBackpropFilterWinograd(ops, x, dy, info);
    assert.ok(dw, `declined ${label(c)}`);
    assert.deepEqual(dw.shape, filter.shape);
    const err = relError(ops.withHeap([dw], ([v]) => v.slice()), expected);
    assert.ok(err < 1e-5, `dW ${label(c)}: rel err ${err}`);
  });
});

// Only the decline is checked: the stock XNNPACK convolution the kernel then falls back to
// corrupts the wasm heap on an empty output (a tfjs-backend-wasm 4.x bug, also without our kernels).
test('conv3x3Winograd declines an empty convolution (valid 3×3 on a 2×2 map)', async () => {
  await initBackend({ backend: 'wasm' });
  const ops = new WasmOps(tf.backend() as unknown as WasmOps['backend']);
  const x = tf.ones([1, 2, 2, 8]);
  const filter = tf.ones([3, 3, 8, 8]);
  try {
    assert.equal(conv3x3Winograd(ops, x, filter, { height: 0, width: 0, padTop: 0, padLeft: 0 }), null);
  } finally {
    ops.dispose();
    tf.dispose([x, filter]);
  }
});
