// Sgd.applyArrays on the onednn backend (the addon's in-place step on the wasm heap) against
// apply() (tfjs ops) bit for bit, and both against the formula in float64.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initBackend, nativeSgdStep, tf } from '@tensorfleet/models';
import { rng } from '../testing/fixtures';
import { Sgd, type SgdOptions } from './sgd';

function randoms(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

/** Two identical sets of variables (a matrix, which is decayed, and a bias, which is not). */
function pair(): [tf.Variable[], tf.Variable[]] {
  // The initial tensors disposed, as the models' initialisers do: each variable alone holds its buffer.
  const variable = (t: tf.Tensor) => {
    const v = tf.variable(t, true);
    t.dispose();
    return v;
  };
  const make = () => [variable(tf.tensor(randoms(96, 1), [8, 12])), variable(tf.tensor(randoms(12, 2), [12]))];
  return [make(), make()];
}

const OPTIONS: [string, SgdOptions][] = [
  ['momentum and weight decay', { momentum: 0.9, weightDecay: 5e-4 }],
  ['Nesterov', { momentum: 0.9, weightDecay: 1e-4, nesterov: true }],
  ['no momentum', { momentum: 0, weightDecay: 5e-4, decayAll: true }],
  ['momentum, no decay', { momentum: 0.5 }],
];

describe('Sgd.applyArrays', () => {
  let why = '';
  before(async () => {
    await initBackend({ backend: 'onednn' }).catch((e: Error) => void (why = e.message));
    if (!why && !nativeSgdStep()) why = 'the addon has no sgdStep: rebuild it (npm run build:native)';
  });

  /** Whether the in-place step can run here; without the addon a skip, or a failure where CI requires it. */
  const native = (t: { skip(m: string): void }): boolean => {
    if (!why) return true;
    assert.notEqual(process.env.FLEET_REQUIRE_NATIVE_DNNL, '1', why);
    t.skip(`no in-place step: ${why}`);
    return false;
  };

  for (const [name, opts] of OPTIONS) {
    it(`${name}: the same bits as apply(), written in place, and the formula's values`, (t) => {
      if (!native(t)) return;
      const [a, b] = pair();
      const sa = new Sgd(a, opts);
      const sb = new Sgd(b, opts);
      const ids = b.map((v) => v.dataId);
      // float64 reference of the same recurrence
      const ref = b.map((v) => Float64Array.from(v.dataSync() as Float32Array));
      const vel = ref.map((w) => new Float64Array(w.length));
      const mu = opts.momentum ?? 0;
      const decay = [true, opts.decayAll ?? false];
      for (let step = 0; step < 4; step++) {
        const lr = 0.1 / (step + 1);
        const grads = b.map((v, i) => randoms(v.size, 10 + 3 * step + i));
        tf.tidy(() => sa.apply(grads.map((g, i) => tf.tensor(g, a[i].shape)), lr));
        sb.applyArrays(grads, lr);
        ref.forEach((w, i) => {
          for (let j = 0; j < w.length; j++) {
            let d = grads[i][j] + (decay[i] ? (opts.weightDecay ?? 0) * w[j] : 0);
            if (mu > 0) {
              vel[i][j] = mu * vel[i][j] + d;
              d = opts.nesterov ? d + mu * vel[i][j] : vel[i][j];
            }
            w[j] -= lr * d;
          }
        });
      }
      b.forEach((v, i) => {
        assert.equal(v.dataId, ids[i], 'updated in place (no new buffer)');
        assert.deepEqual(v.dataSync(), a[i].dataSync(), `weight ${i}: bits differ from apply()`);
        const got = v.dataSync() as Float32Array;
        for (let j = 0; j < got.length; j++) assert.ok(Math.abs(got[j] - ref[i][j]) <= 1e-6 * Math.max(1, Math.abs(ref[i][j])), `weight ${i}[${j}]: ${got[j]} against ${ref[i][j]}`);
      });
      sb.slots.forEach((s, i) => assert.deepEqual(s.dataSync(), sa.slots[i].dataSync(), `velocity ${i}`));
      sa.dispose();
      sb.dispose();
      tf.dispose([...a, ...b]);
    });
  }

  it('some weights now and the others later (a column\'s update segment by segment): the bits of one call, in place and through apply()', (t) => {
    if (!native(t)) return;
    const [a, b] = pair();
    const [c] = pair();
    const opts = { momentum: 0.9, weightDecay: 1e-3 };
    const [whole, parts, ops] = [new Sgd(a, opts), new Sgd(b, opts), new Sgd(c, opts)];
    for (let step = 0; step < 3; step++) {
      const grads = a.map((v, i) => randoms(v.size, 60 + 3 * step + i));
      whole.applyArrays(grads, 0.05);
      parts.applyArrays(grads, 0.05, [1]);
      parts.applyArrays(grads, 0.05, [0]);
      tf.tidy(() => {
        const gs = grads.map((g, i) => tf.tensor(g, c[i].shape));
        ops.apply(gs, 0.05, [1]);
        ops.apply([gs[0], null], 0.05, [0]);
      });
    }
    a.forEach((v, i) => {
      assert.deepEqual(b[i].dataSync(), v.dataSync(), `weight ${i}, in place in two calls`);
      assert.deepEqual(c[i].dataSync(), v.dataSync(), `weight ${i}, apply() in two calls`);
      assert.deepEqual(parts.slots[i].dataSync(), whole.slots[i].dataSync(), `velocity ${i}`);
    });
    for (const s of [whole, parts, ops]) s.dispose();
    tf.dispose([...a, ...b, ...c]);
  });

  it('a weight whose buffer is shared is not written in place: apply()\'s new buffer, and the sharer keeps its values', (t) => {
    if (!native(t)) return;
    const [, b] = pair();
    const s = new Sgd(b, { momentum: 0.9 });
    const view = tf.reshape(b[1], [3, 4]); // shares b[1]'s buffer
    const before = Float32Array.from(view.dataSync() as Float32Array);
    const id = b[1].dataId;
    s.applyArrays(b.map((v, i) => randoms(v.size, 40 + i)), 0.1);
    assert.notEqual(b[1].dataId, id);
    assert.deepEqual(view.dataSync(), before);
    view.dispose();
    s.dispose();
    tf.dispose(b);
  });
});
