import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { onOnednnThenCpu, onednnSkip, relError, stridedConvCases, values, type ConvCase } from './testing';
import { dnnlAddon, DNNL_BUILD_HINT, dnnlLoadError } from './onednn-addon';
import { onednnKernelStats, resetOnednnKernelStats } from './onednn-kernels';
import { ONEDNN_KERNELS } from './register-onednn-backend';
import { initBackend } from './init-backend';

// Every oneDNN convolution against the cpu backend over the shapes of conv-grad-kernels.spec.ts
// (strides 1/2/4, kernels 1–11, same/valid/explicit padding, odd sizes, channel counts that
// aren't multiples of oneDNN's 8-channel blocks) and winograd-conv.spec.ts (3×3 stride 1 from
// 1×1 maps up), plus dilations, which only the forward convolution takes in tfjs.
const skip = onednnSkip();

type Case = ConvCase;

const CASES: Case[] = stridedConvCases();
for (const [h, w] of [[1, 1], [2, 2], [3, 5], [8, 8], [7, 6]]) {
  for (const [cin, cout] of [[1, 1], [3, 5], [5, 17], [16, 16], [17, 3], [64, 64]]) {
    CASES.push({ shape: [2, h, w, cin], cout, k: 3, stride: 1, pad: 'same' });
    if (h >= 3 && w >= 3) CASES.push({ shape: [1, h, w, cin], cout, k: 3, stride: 1, pad: 'valid' });
  }
}
CASES.push({ shape: [2, 41, 39, 16], cout: 32, k: 3, stride: 2, pad: [[0, 0], [1, 1], [1, 1], [0, 0]] });
CASES.push({ shape: [2, 40, 40, 16], cout: 16, k: 3, stride: 1, pad: 'same' });
CASES.push({ shape: [2, 67, 65, 3], cout: 8, k: 11, stride: 4, pad: [[0, 0], [2, 2], [2, 2], [0, 0]] }); // AlexNet's conv1
for (const dilation of [2, 3]) {
  CASES.push({ shape: [2, 13, 12, 8], cout: 16, k: 3, stride: 1, pad: 'same', dilation });
  CASES.push({ shape: [1, 11, 15, 3], cout: 5, k: 3, stride: 1, pad: 'valid', dilation });
}

const label = (c: Case) => `x=${c.shape} cout=${c.cout} k=${c.k} s=${c.stride} d=${c.dilation ?? 1} pad=${JSON.stringify(c.pad)}`;

/** Forward (plain and fused with bias and ReLU) and both gradients through the kernels. */
function convolutions(c: Case): Float32Array[] {
  return tf.tidy(() => {
    const [n, h, w, cin] = c.shape;
    const dilations = c.dilation ?? 1;
    const filterShape: Case['shape'] = [c.k, c.k, cin, c.cout];
    const info = tf.backend_util.computeConv2DInfo(c.shape, filterShape, c.stride, dilations, c.pad);
    const x = tf.tensor4d(values(n * h * w * cin, 1), c.shape);
    const filter = tf.tensor4d(values(c.k * c.k * cin * c.cout, 2), filterShape);
    const bias = tf.tensor1d(values(c.cout, 4));
    const attrs = { strides: c.stride, pad: c.pad, dataFormat: 'NHWC', dilations, dimRoundingMode: undefined };
    const run = (name: string, inputs: object, extra: object = {}) =>
      (tf.engine().runKernel(name, inputs as never, { ...attrs, ...extra } as never) as tf.Tensor).dataSync() as Float32Array;
    const out = [
      run(tf.Conv2D, { x, filter }),
      run(tf.FusedConv2D, { x, filter, bias }, { activation: 'relu' }),
    ];
    if (dilations === 1) {
      const dy = tf.tensor4d(values(tf.util.sizeFromShape(info.outShape), 3), info.outShape);
      out.push(run(tf.Conv2DBackpropInput, { dy, filter }, { inputShape: c.shape }));
      out.push(run(tf.Conv2DBackpropFilter, { x, dy }, { filterShape }));
    }
    return out;
  });
}

test('the oneDNN addon is built where it is required', { skip: process.env.FLEET_REQUIRE_NATIVE_DNNL !== '1' && 'FLEET_REQUIRE_NATIVE_DNNL is not set' }, () => {
  assert.ok(dnnlAddon(), `the oneDNN addon does not load (${dnnlLoadError()}). ${DNNL_BUILD_HINT}`);
});

// 'auto' runs NHWC in place where oneDNN has direct NHWC kernels (AVX-512), 'blocked' the path
// AVX2 machines take (a reorder each way around oneDNN's nChw8c/16c kernels): both on every host.
for (const layout of ['auto', 'blocked'] as const) {
  test(`oneDNN convolutions, ${layout} layout (forward, fused bias + ReLU, input and filter gradients), match the cpu backend`, { skip }, async () => {
    dnnlAddon()?.setLayout(layout);
    resetOnednnKernelStats();
    try {
      const { onednn, cpu } = await onOnednnThenCpu(() => CASES.map(convolutions));
      const stats = onednnKernelStats();
      // Every case ran natively: a silent fallback to wasm would make this spec check wasm.
      assert.deepEqual(stats.declined, {});
      const backward = CASES.filter((c) => (c.dilation ?? 1) === 1).length;
      assert.deepEqual(stats.ran, { Conv2D: CASES.length, FusedConv2D: CASES.length, Conv2DBackpropInput: backward, Conv2DBackpropFilter: backward });
      const names = ['y', 'fused', 'dx', 'dW'];
      CASES.forEach((c, i) => {
        onednn[i].forEach((got, j) => {
          const err = relError(got, cpu[i][j]);
          assert.ok(err < 1e-5, `${names[j]} ${label(c)}: rel err ${err}`);
        });
      });
      assert.ok(CASES.length >= 140, `${CASES.length} cases`);
    } finally {
      dnnlAddon()?.setLayout('auto');
    }
  });
}

const MATMULS: [number[], number[], boolean, boolean][] = [
  [[5, 300], [5, 40], true, false], // dense dW: xᵀ·dy
  [[5, 40], [300, 40], false, true], // dense dx: dy·Wᵀ (a short A: as (W·dyᵀ)ᵀ, productByTransposes)
  [[33, 17], [301, 17], false, true], // the same at odd sizes
  [[70, 40], [300, 40], false, true], // A too tall for it: the direct product
  [[2, 5, 40], [2, 300, 40], false, true], // batched: the direct product
  [[7, 9], [9, 4], false, false],
  [[9, 7], [4, 9], true, true],
  [[2, 9, 7], [2, 9, 4], true, false], // batched
  [[3, 9, 7], [1, 7, 4], false, false], // B broadcast over the batch
];

test('oneDNN matrix products (plain, and fused with bias and ReLU) match the cpu backend', { skip }, async () => {
  resetOnednnKernelStats();
  const run = () =>
    tf.tidy(() =>
      MATMULS.flatMap(([sa, sb, ta, tb], i) => {
        const a = tf.tensor(values(tf.util.sizeFromShape(sa), 30 + i), sa);
        const b = tf.tensor(values(tf.util.sizeFromShape(sb), 60 + i), sb);
        const n = tb ? sb[sb.length - 2] : sb[sb.length - 1];
        const bias = tf.tensor1d(values(n, 90 + i));
        const fused = tf.fused.matMul({ a, b, transposeA: ta, transposeB: tb, bias, activation: 'relu' });
        return [tf.matMul(a, b, ta, tb).dataSync() as Float32Array, fused.dataSync() as Float32Array];
      }),
    );
  const { onednn, cpu } = await onOnednnThenCpu(run);
  onednn.forEach((got, i) => assert.ok(relError(got, cpu[i]) < 1e-5, `product ${i}: rel err ${relError(got, cpu[i])}`));
  assert.deepEqual(onednnKernelStats().ran, { BatchMatMul: MATMULS.length, _FusedMatMul: MATMULS.length });
});

test('a convolution oneDNN declines (an activation it does not fuse) runs the wasm kernel and is counted', { skip }, async () => {
  resetOnednnKernelStats();
  const { onednn, cpu } = await onOnednnThenCpu(() =>
    tf.tidy(() => {
      const x = tf.tensor4d(values(2 * 6 * 6 * 4, 1), [2, 6, 6, 4]);
      const filter = tf.tensor4d(values(3 * 3 * 4 * 8, 2), [3, 3, 4, 8]);
      return tf.fused.conv2d({ x, filter, strides: 1, pad: 'same', activation: 'relu6' }).dataSync() as Float32Array;
    }),
  );
  assert.ok(relError(onednn, cpu) < 1e-5);
  assert.deepEqual(onednnKernelStats(), { ran: {}, declined: { FusedConv2D: ['activation relu6'] } });
});

test("the onednn kernel table is wasm's, with oneDNN's kernels in place of exactly ONEDNN_KERNELS", { skip }, async () => {
  await initBackend({ backend: 'onednn' });
  const wasm = tf.getKernelsForBackend('wasm');
  assert.equal(tf.getKernelsForBackend('onednn').length, wasm.length);
  for (const k of wasm) {
    const mine = tf.getKernel(k.kernelName, 'onednn');
    assert.ok(mine, `${k.kernelName} missing on onednn`);
    assert.equal(mine.kernelFunc !== k.kernelFunc, ONEDNN_KERNELS.includes(k.kernelName), k.kernelName);
  }
});
