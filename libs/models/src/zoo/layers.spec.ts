import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { AdaptiveAvgPool2D, GroupedConv2D, LocalResponseNorm, PadShortcut, TfGraph } from '..';

before(async () => {
  await tf.setBackend('cpu');
});

/** Deterministic pseudo-random values (LCG), independent of tf's RNG. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

function run(layer: tf.layers.Layer, x: tf.Tensor): Float32Array {
  return tf.tidy(() => (layer.apply(x) as tf.Tensor).dataSync() as Float32Array);
}

test('LRN equals b_c = a_c / (k + α/n Σ a²)^β over the n-channel window (PyTorch/Caffe definition)', () => {
  const [n, h, w, c] = [2, 3, 4, 11];
  const data = values(n * h * w * c, 1).map((v) => v * 20); // large enough that the normaliser matters
  const size = 5, alpha = 1e-4, beta = 0.75, k = 2;
  const got = run(new LocalResponseNorm({ size, alpha, beta, k }), tf.tensor4d(data, [n, h, w, c]));
  const want = new Float32Array(data.length);
  for (let p = 0; p < n * h * w; p++) {
    for (let ch = 0; ch < c; ch++) {
      let sum = 0;
      for (let j = Math.max(0, ch - 2); j <= Math.min(c - 1, ch + 2); j++) sum += data[p * c + j] ** 2;
      want[p * c + ch] = data[p * c + ch] / (k + (alpha / size) * sum) ** beta;
    }
  }
  assertClose(got, want, 1e-5, 'lrn');
  // With these values the normalisation is not the identity (the check above would be vacuous).
  assert.ok(Math.abs(got[5] - data[5] / 2 ** 0.75) > 1e-6 || Math.abs(data[5]) < 1e-3);
});

test('GroupedConv2D equals a direct loop over groups, channels and taps (stride 2, same and valid)', () => {
  const [n, h, w, cin, cout, g, kSize] = [2, 7, 6, 8, 12, 4, 3];
  for (const padding of ['valid', 'same'] as const) {
    const layer = new GroupedConv2D({ filters: cout, kernelSize: kSize, strides: 2, padding, groups: g, useBias: true, kernelInit: { dist: 'normal', std: 1 }, biasInit: { dist: 'uniform', limit: 1 }, kernelSeed: 3, biasSeed: 4 });
    const xData = values(n * h * w * cin, 2);
    const got = run(layer, tf.tensor4d(xData, [n, h, w, cin]));
    const [kernel, bias] = layer.getWeights().map((t) => t.dataSync());
    const cinG = cin / g, coutG = cout / g;
    const ho = padding === 'same' ? Math.ceil(h / 2) : Math.floor((h - kSize) / 2) + 1;
    const wo = padding === 'same' ? Math.ceil(w / 2) : Math.floor((w - kSize) / 2) + 1;
    // TF 'same': total padding max((o-1)s + k - n, 0), the smaller half on top/left.
    const padTop = padding === 'same' ? Math.floor(Math.max((ho - 1) * 2 + kSize - h, 0) / 2) : 0;
    const padLeft = padding === 'same' ? Math.floor(Math.max((wo - 1) * 2 + kSize - w, 0) / 2) : 0;
    const want = new Float32Array(n * ho * wo * cout);
    for (let b = 0; b < n; b++) for (let i = 0; i < ho; i++) for (let j = 0; j < wo; j++) for (let o = 0; o < cout; o++) {
      const grp = Math.floor(o / coutG);
      let s = bias[o];
      for (let di = 0; di < kSize; di++) for (let dj = 0; dj < kSize; dj++) for (let ci = 0; ci < cinG; ci++) {
        const y = i * 2 + di - padTop, x = j * 2 + dj - padLeft;
        if (y < 0 || y >= h || x < 0 || x >= w) continue;
        s += xData[((b * h + y) * w + x) * cin + grp * cinG + ci] * kernel[((di * kSize + dj) * cinG + ci) * cout + o];
      }
      want[((b * ho + i) * wo + j) * cout + o] = s;
    }
    assertClose(got, want, 1e-4, `grouped conv ${padding}`);
  }
});

test('GroupedConv2D has the right input gradient (finite differences)', () => {
  const layer = new GroupedConv2D({ filters: 4, kernelSize: 3, padding: 'same', groups: 2, kernelInit: { dist: 'normal', std: 0.5 }, kernelSeed: 9 });
  const x = tf.tensor4d(values(1 * 4 * 4 * 4, 5), [1, 4, 4, 4]);
  const loss = (input: tf.Tensor) => tf.sum(tf.square(layer.apply(input) as tf.Tensor)) as tf.Scalar;
  const grad = tf.grad(loss)(x).dataSync();
  const eps = 1e-2;
  for (const idx of [0, 17, 38, 63]) {
    const d = new Float32Array(64);
    d[idx] = eps;
    const plus = loss(tf.add(x, tf.tensor4d(d, [1, 4, 4, 4]))).dataSync()[0];
    const minus = loss(tf.sub(x, tf.tensor4d(d, [1, 4, 4, 4]))).dataSync()[0];
    assert.ok(Math.abs((plus - minus) / (2 * eps) - grad[idx]) < 1e-2 * (1 + Math.abs(grad[idx])), `d/dx[${idx}]`);
  }
});

test("AdaptiveAvgPool2D equals PyTorch's bins [floor(i·n/o), ceil((i+1)·n/o))", () => {
  const [h, w, c, o] = [13, 5, 3, 6];
  const data = values(h * w * c, 7);
  const got = run(new AdaptiveAvgPool2D({ size: o }), tf.tensor4d(data, [1, h, w, c]));
  const want: number[] = [];
  for (let i = 0; i < o; i++) for (let j = 0; j < o; j++) for (let ch = 0; ch < c; ch++) {
    const [y0, y1] = [Math.floor((i * h) / o), Math.ceil(((i + 1) * h) / o)];
    const [x0, x1] = [Math.floor((j * w) / o), Math.ceil(((j + 1) * w) / o)];
    let s = 0;
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) s += data[(y * w + x) * c + ch];
    want.push(s / ((y1 - y0) * (x1 - x0)));
  }
  assertClose(got, want, 1e-5, 'adaptive pool');
});

test('PadShortcut (option A) equals x[:, ::2, ::2] with channels zero-padded evenly', () => {
  const [h, w, c, out] = [5, 4, 2, 6];
  const data = values(h * w * c, 11);
  const got = run(new PadShortcut({ stride: 2, channels: out }), tf.tensor4d(data, [1, h, w, c]));
  const want: number[] = [];
  for (let y = 0; y < h; y += 2) for (let x = 0; x < w; x += 2) for (let ch = 0; ch < out; ch++) {
    const src = ch - (out - c) / 2;
    want.push(src >= 0 && src < c ? data[(y * w + x) * c + src] : 0);
  }
  assertClose(got, want, 0, 'pad shortcut');
});

test('ResNet-D shortcut pool equals AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False) on odd maps', () => {
  const [h, w, c] = [7, 5, 2];
  const g = new TfGraph();
  const input = g.input(7, 2);
  const model = tf.model({ inputs: input, outputs: g.avgPoolCeil(tf.layers.cropping2D({ cropping: [[0, 0], [0, 2]] }).apply(input) as tf.SymbolicTensor, { name: 'pool', size: 2, stride: 2 }) });
  const data = values(h * 7 * c, 13);
  const got = tf.tidy(() => (model.predict(tf.tensor4d(data, [1, h, 7, c])) as tf.Tensor).dataSync());
  const at = (y: number, x: number, ch: number) => data[(y * 7 + x) * c + ch];
  const want: number[] = [];
  for (let i = 0; i < Math.ceil(h / 2); i++) for (let j = 0; j < Math.ceil(w / 2); j++) for (let ch = 0; ch < c; ch++) {
    let s = 0, n = 0;
    for (let y = 2 * i; y < Math.min(2 * i + 2, h); y++) for (let x = 2 * j; x < Math.min(2 * j + 2, w); x++) { s += at(y, x, ch); n++; }
    want.push(s / n);
  }
  assertClose(got, want, 1e-6, 'avg-down pool');
});

test('stride-2 conv and max-pool pad as PyTorch does (symmetric), not as TF "same"', () => {
  const [h, c, f] = [6, 2, 3];
  const g = new TfGraph(1);
  const input = g.input(h, c);
  const conv = g.conv(input, { name: 'conv', filters: f, kernel: 3, stride: 2, padding: 1 });
  const pool = g.maxPool(input, { name: 'pool', size: 3, stride: 2, padding: 1 });
  const model = tf.model({ inputs: input, outputs: [conv, pool] });
  const data = values(h * h * c, 17).map((v) => v + 0.5); // ≥ 0, as after a ReLU
  const [yc, yp] = tf.tidy(() => (model.predict(tf.tensor4d(data, [1, h, h, c])) as tf.Tensor[]).map((t) => t.dataSync()));
  const kernel = model.getLayer('conv').getWeights()[0].dataSync();
  const at = (y: number, x: number, ch: number) => (y < 0 || x < 0 || y >= h || x >= h ? null : data[(y * h + x) * c + ch]);
  const o = Math.floor((h + 2 - 3) / 2) + 1;
  const wantConv: number[] = [];
  const wantPool: number[] = [];
  for (let i = 0; i < o; i++) for (let j = 0; j < o; j++) {
    for (let k = 0; k < f; k++) {
      let s = 0;
      for (let di = 0; di < 3; di++) for (let dj = 0; dj < 3; dj++) for (let ch = 0; ch < c; ch++) s += (at(2 * i - 1 + di, 2 * j - 1 + dj, ch) ?? 0) * kernel[((di * 3 + dj) * c + ch) * f + k];
      wantConv.push(s);
    }
    for (let ch = 0; ch < c; ch++) {
      let m = -Infinity;
      for (let di = 0; di < 3; di++) for (let dj = 0; dj < 3; dj++) m = Math.max(m, at(2 * i - 1 + di, 2 * j - 1 + dj, ch) ?? -Infinity);
      wantPool.push(m);
    }
  }
  assertClose(yc, wantConv, 1e-5, 'conv');
  assertClose(yp, wantPool, 0, 'max-pool');
});
