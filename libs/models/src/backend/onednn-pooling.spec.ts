import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { onOnednnThenCpu, onednnSkip, relError, values } from './testing';
import { onednnKernelStats, resetOnednnKernelStats } from './onednn-kernels';

// oneDNN's pooling (onednn-pooling.ts) against the cpu backend: forward and gradient of max
// and average pooling over the zoo's pools (AlexNet's overlapping 3×3 stride 2, ResNet's 3×3
// stride 2 pad 1, the global average pool) and odd ones (even windows, 'same' at odd sizes,
// stride larger than the window, channel counts 1–33).
const skip = onednnSkip();

interface PoolCase {
  shape: [number, number, number, number];
  size: [number, number];
  stride: [number, number];
  pad: 'same' | 'valid' | number;
}

const CASES: PoolCase[] = [
  { shape: [2, 27, 27, 5], size: [3, 3], stride: [2, 2], pad: 'valid' }, // AlexNet's pools (13×13 out)
  { shape: [2, 17, 15, 16], size: [3, 3], stride: [2, 2], pad: 1 }, // ResNet's stem pool (explicit pad 1)
  { shape: [1, 12, 12, 3], size: [3, 3], stride: [2, 2], pad: 'same' },
  { shape: [2, 11, 13, 7], size: [2, 2], stride: [2, 2], pad: 'same' },
  { shape: [1, 9, 10, 33], size: [2, 3], stride: [1, 2], pad: 'valid' },
  { shape: [3, 7, 7, 1], size: [1, 1], stride: [3, 3], pad: 'valid' },
  { shape: [2, 8, 9, 4], size: [5, 5], stride: [1, 1], pad: 'same' },
  { shape: [2, 7, 7, 12], size: [7, 7], stride: [1, 1], pad: 'valid' }, // global pool as a 7×7 window
];

const label = (c: PoolCase) => `x=${c.shape} size=${c.size} stride=${c.stride} pad=${c.pad}`;

/**
 * Max pool inputs quantised to 5 levels so that most windows hold ties: a fair check of which
 * element the gradient goes to (both pick the first maximum in row-major window order).
 */
function poolInput(shape: number[], ties: boolean): tf.Tensor4D {
  const v = values(shape.reduce((a, b) => a * b, 1), 41);
  return tf.tensor4d(ties ? v.map((e) => Math.round(e * 2) / 2) : v, shape as [number, number, number, number]);
}

/** y and dx of max pool (with ties, then without) and average pool for a loss reading y. */
function pools(c: PoolCase): Float32Array[] {
  return tf.tidy(() => {
    const out: tf.Tensor[] = [];
    const probeFor = (y: tf.Tensor) => tf.tensor(values(y.size, 42), y.shape);
    for (const [pool, ties] of [[tf.maxPool, true], [tf.maxPool, false], [tf.avgPool, false]] as const) {
      const x = poolInput(c.shape, ties);
      const f = (xx: tf.Tensor4D) => pool(xx, c.size, c.stride, c.pad as never);
      const y = f(x);
      const probe = probeFor(y);
      out.push(y, tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor4D), probe)))(x));
    }
    return out.map((t) => t.dataSync() as Float32Array);
  });
}

const NAMES = ['max y (ties)', 'max dx (ties)', 'max y', 'max dx', 'avg y', 'avg dx'];

test('oneDNN max and average pooling and their gradients match the cpu backend', { skip }, async () => {
  for (const c of CASES) {
    resetOnednnKernelStats();
    const { onednn, cpu } = await onOnednnThenCpu(() => pools(c));
    const stats = onednnKernelStats();
    assert.deepEqual(stats.declined, {}, `declined for ${label(c)}`);
    // Each pool runs twice (y, and inside the gradient), each gradient once; max pool for two inputs.
    const expected = { [tf.MaxPool]: 4, [tf.MaxPoolGrad]: 2, [tf.AvgPool]: 2, [tf.AvgPoolGrad]: 1 };
    for (const [k, n] of Object.entries(expected)) assert.equal(stats.ran[k], n, `${k} ran natively for ${label(c)}`);
    for (let i = 0; i < NAMES.length; i++) {
      const err = relError(onednn[i], cpu[i]);
      assert.ok(err < 1e-5, `${NAMES[i]} for ${label(c)}: rel err ${err}`);
    }
  }
});

test('global average pooling (Mean over H and W) and its gradient run on oneDNN and match cpu', { skip }, async () => {
  for (const shape of [[2, 7, 7, 12], [3, 1, 1, 5], [1, 8, 5, 33]] as [number, number, number, number][]) {
    const run = () =>
      tf.tidy(() => {
        const x = tf.tensor4d(values(shape.reduce((a, b) => a * b, 1), 43), shape);
        const probe = tf.tensor2d(values(shape[0] * shape[3], 44), [shape[0], shape[3]]);
        const f = (xx: tf.Tensor4D) => tf.layers.globalAveragePooling2d({}).apply(xx) as tf.Tensor;
        const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor4D), probe)))(x);
        return [f(x), dx, tf.mean(x, [1, 2], true)].map((t) => t.dataSync() as Float32Array);
      });
    resetOnednnKernelStats();
    const { onednn, cpu } = await onOnednnThenCpu(run);
    const stats = onednnKernelStats();
    assert.equal(stats.ran[tf.Mean], 3, `Mean as a pool for ${shape}: ${JSON.stringify(stats.ran)}`);
    assert.equal(stats.ran[tf.AvgPoolGrad], 1, `its gradient as a pool's for ${shape}`);
    for (const [i, name] of ['y', 'dx', 'mean keepDims'].entries()) {
      const err = relError(onednn[i], cpu[i]);
      assert.ok(err < 1e-5, `global average pool ${name} for ${shape}: rel err ${err}`);
    }
  }
});
