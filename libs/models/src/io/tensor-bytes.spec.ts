import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ModelIoError, createModel, tensorsFromBytes, tensorsToBytes, weightsFromBytes, weightsToBytes } from '..';

before(async () => {
  await tf.setBackend('cpu');
});

test('tensorsToBytes / tensorsFromBytes round-trip names, order, shapes, dtypes and bits', () => {
  const f = new Float32Array([1.5, -0, NaN, Infinity, 3e-38, -7]);
  const bytes = tensorsToBytes({
    'a/kernel': tf.tensor3d(Array.from(f), [1, 2, 3]),
    steps: new Int32Array([7, -1]),
    raw: f.subarray(1, 4),
    shaped: { shape: [2, 1], data: new Float32Array([0.25, 0.5]) },
  });
  const back = tensorsFromBytes(bytes);
  assert.deepEqual(Object.keys(back), ['a/kernel', 'steps', 'raw', 'shaped']);
  assert.deepEqual(back['a/kernel'].shape, [1, 2, 3]);
  assert.deepEqual(new Uint8Array(back['a/kernel'].data.buffer), new Uint8Array(f.buffer));
  assert.equal(back.steps.dtype, 'int32');
  assert.deepEqual(Array.from(back.steps.data), [7, -1]);
  assert.deepEqual(back.raw.shape, [3]);
  assert.ok(Object.is(back.raw.data[0], -0));
  assert.deepEqual(back.shaped, { shape: [2, 1], dtype: 'float32', data: new Float32Array([0.25, 0.5]) });
  // Reading from an unaligned copy works too (e.g. a slice of a larger download).
  const shifted = new Uint8Array(bytes.length + 1);
  shifted.set(bytes, 1);
  assert.deepEqual(Array.from(tensorsFromBytes(shifted.subarray(1)).shaped.data), [0.25, 0.5]);
});

test('tensorsFromBytes rejects what it did not write', () => {
  const bytes = tensorsToBytes({ x: new Float32Array(16) });
  assert.throws(() => tensorsFromBytes(new TextEncoder().encode('{"not":"ours"}')), (e: unknown) => e instanceof ModelIoError && e.code === 'BAD_FORMAT');
  assert.throws(() => tensorsFromBytes(bytes.subarray(0, bytes.length - 4)), /truncated/);
  assert.throws(() => tensorsToBytes({ x: { shape: [3], data: new Float32Array(2) } }), /does not hold/);
});

test('weights round-trip into a fresh model, batch-norm moving statistics included', () => {
  const a = createModel('resnet8', { seed: 1 });
  const b = createModel('resnet8', { seed: 2 });
  const x = tf.randomUniform([4, 32, 32, 3], -1, 1, 'float32', 3);
  try {
    // Moving statistics as after training, so that inference outputs depend on them.
    for (const layer of a.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
      const [gamma, beta, mean, variance] = layer.getWeights();
      layer.setWeights([gamma, beta, tf.randomNormal(mean.shape, 0, 0.5, 'float32', 6), tf.randomUniform(variance.shape, 0.5, 2, 'float32', 7)]);
    }
    const bytes = weightsToBytes(a);
    weightsFromBytes(b, bytes);
    assert.deepEqual(weightsToBytes(b), bytes);
    const pa = (a.predict(x) as tf.Tensor).dataSync();
    const pb = (b.predict(x) as tf.Tensor).dataSync();
    assert.deepEqual(pb, pa);
    const names = Object.keys(tensorsFromBytes(bytes));
    assert.equal(names.length, a.weights.length);
    assert.ok(names.includes('bn1/moving_variance'));
  } finally {
    [a, b, x].forEach((t) => t.dispose());
  }
});

test('weights of another architecture are refused with the names that differ', () => {
  const a = createModel('resnet8', { seed: 1 });
  const b = createModel('resnet8', { seed: 1, numClasses: 5 });
  const c = createModel('resnet20', { seed: 1 });
  try {
    assert.throws(() => weightsFromBytes(c, weightsToBytes(a)), (e: unknown) => e instanceof ModelIoError && e.code === 'WEIGHT_MISMATCH' && /missing layer1_1/.test(e.message));
    assert.throws(() => weightsFromBytes(b, weightsToBytes(a)), /fc\/kernel: stored shape \[64, 10\], model has \[64, 5\]/);
  } finally {
    [a, b, c].forEach((m) => m.dispose());
  }
});

test('optimizer state (momentum slots) round-trips through tensorsToBytes', async () => {
  const vars = [tf.variable(tf.tensor2d([[1, -2], [3, 4]]), true, 'w'), tf.variable(tf.tensor1d([0.5]), true, 'b')];
  const opt = tf.train.momentum(0.1, 0.9);
  const loss = () => tf.add(tf.sum(tf.square(vars[0])), tf.sum(tf.square(vars[1]))) as tf.Scalar;
  try {
    opt.minimize(loss);
    opt.minimize(loss);
    const state = await opt.getWeights();
    const bytes = tensorsToBytes(Object.fromEntries(state.map((w) => [w.name, w.tensor])));
    const back = tensorsFromBytes(bytes);
    assert.equal(Object.keys(back).length, state.length);
    for (const w of state) assert.deepEqual(back[w.name].data, w.tensor.dataSync(), w.name);
    const fresh = tf.train.momentum(0.1, 0.9);
    await fresh.setWeights(Object.entries(back).map(([name, v]) => ({ name, tensor: tf.tensor(v.data, v.shape, v.dtype) })));
    const again = await fresh.getWeights();
    assert.deepEqual(again.map((w) => w.name), state.map((w) => w.name));
    assert.deepEqual(again[1].tensor.dataSync(), state[1].tensor.dataSync());
  } finally {
    vars.forEach((v) => v.dispose());
  }
});
