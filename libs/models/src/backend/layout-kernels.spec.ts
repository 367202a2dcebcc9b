import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { onWasmThenCpu, relError, values } from './testing';

const SHAPE = [3, 5, 6, 8];

/** Outputs of slice, split and concat (and a grouped convolution's gradients) on the active backend. */
function run(): Float32Array[] {
  return tf.tidy(() => {
    const x = tf.tensor4d(values(3 * 5 * 6 * 8, 21), SHAPE as [number, number, number, number]);
    const out: tf.Tensor[] = [
      tf.slice(x, [1, 2, 0, 0], [2, 3, 6, 8]),
      tf.slice(x, [0, 1, 2, 3], [3, 3, 3, 4]),
      tf.slice(x, [2, 4, 5, 7], [1, 1, 1, 1]),
      tf.slice(tf.reshape(x, [3, 5, 6, 2, 4]), [1, 0, 1, 1, 0], [2, 5, 4, 1, 3]),
      tf.slice(tf.reshape(x, [720]), [17], [300]),
    ];
    for (const axis of [0, 1, 2, 3]) {
      const parts = axis === 1 ? 5 : axis === 0 ? 3 : 2;
      const pieces = tf.split(x, parts, axis);
      out.push(...pieces, tf.concat(pieces.reverse(), axis));
    }
    const uneven = tf.split(x, [1, 5, 2], 3);
    out.push(...uneven, tf.concat(uneven, 3), tf.concat([x, tf.slice(x, [0, 0, 0, 0], [3, 5, 6, 3])], 3));
    // Grouped convolution as the zoo writes it: split channels, one conv per group, concat.
    const w = tf.tensor4d(values(3 * 3 * 2 * 8, 22), [3, 3, 2, 8]);
    const grouped = (xx: tf.Tensor, ww: tf.Tensor) => {
      const xs = tf.split(xx as tf.Tensor4D, 4, 3);
      const ws = tf.split(ww as tf.Tensor4D, 4, 3);
      return tf.concat(xs.map((xg, g) => tf.conv2d(xg as tf.Tensor4D, ws[g] as tf.Tensor4D, 2, 'same')), 3);
    };
    const probe = tf.tensor4d(values(3 * 3 * 3 * 8, 23), [3, 3, 3, 8]);
    out.push(grouped(x, w), ...tf.grads((xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(grouped(xx, ww), probe)))([x, w]));
    return out.map((t) => t.dataSync() as Float32Array);
  });
}

test('slice, split, concat and a grouped convolution with gradients match cpu on wasm', async () => {
  const { wasm, cpu } = await onWasmThenCpu(run);
  assert.equal(wasm.length, cpu.length);
  for (let i = 0; i < cpu.length; i++) {
    assert.equal(wasm[i].length, cpu[i].length, `output ${i} size`);
    assert.ok(relError(wasm[i], cpu[i]) < 1e-5, `output ${i}: rel err ${relError(wasm[i], cpu[i])}`);
  }
});
