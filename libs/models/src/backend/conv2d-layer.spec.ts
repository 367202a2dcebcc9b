import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { relError, values } from './testing';
import { FleetConv2D } from './conv2d-layer';
import { createModel } from '../zoo';

/** Output and gradients (input, kernel, bias) of a conv layer for a loss reading its output. */
function layerGradients(make: (args: Parameters<typeof tf.layers.conv2d>[0]) => tf.layers.Layer, args: Parameters<typeof tf.layers.conv2d>[0]): Float32Array[] {
  const layer = make({ ...args, kernelInitializer: tf.initializers.randomUniform({ minval: -1, maxval: 1, seed: 3 }), biasInitializer: 'ones' });
  const x = tf.tensor4d(values(2 * 9 * 11 * 3, 1), [2, 9, 11, 3]);
  layer.build(x.shape);
  const y = layer.apply(x) as tf.Tensor;
  const probe = tf.tensor(values(y.size, 2), y.shape);
  const vars = layer.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const loss = (xx: tf.Tensor) => tf.sum(tf.mul(layer.apply(xx) as tf.Tensor, probe)) as tf.Scalar;
  const dx = tf.grad(loss)(x);
  const { grads } = tf.variableGrads(() => loss(x), vars);
  const out = [y, dx, ...vars.map((v) => grads[v.name])].map((t) => t.dataSync() as Float32Array);
  tf.dispose([x, y, probe, dx, ...Object.values(grads)]);
  tf.dispose(layer.weights.map((w) => w.read()));
  return out;
}

test('FleetConv2D gives the stock Conv2D layer\'s output and gradients (bias, ReLU, strides, same/valid)', async () => {
  await initBackend({ backend: 'cpu' });
  for (const args of [
    { filters: 4, kernelSize: 3, padding: 'same', useBias: true, activation: 'relu' },
    { filters: 5, kernelSize: 5, strides: 2, padding: 'valid', useBias: true },
    { filters: 2, kernelSize: 1, strides: 3, padding: 'same', useBias: false },
  ] as Parameters<typeof tf.layers.conv2d>[0][]) {
    const mine = layerGradients((a) => new FleetConv2D(a), args);
    const stock = layerGradients((a) => tf.layers.conv2d(a), args);
    assert.equal(mine.length, stock.length);
    for (let i = 0; i < stock.length; i++) {
      const err = relError(mine[i], stock[i]);
      assert.ok(err < 1e-6, `${['y', 'dx', 'dkernel', 'dbias'][i]} for ${JSON.stringify(args)}: rel err ${err}`);
    }
  }
  assert.equal(new FleetConv2D({ filters: 1, kernelSize: 1 }).getClassName(), 'Conv2D');
});

// The layer reading the input image needs no input gradient: per training step, one input
// gradient fewer than there are convolutions (counted by the profiler, on wasm).
for (const [name, inputSize] of [['resnet20', 16], ['alexnet', 64], ['resnet50', 32]] as const) {
  test(`${name}: no input gradient for the convolution that reads the image`, async () => {
    await initBackend({ backend: 'wasm' });
    const model = createModel(name, { inputSize, numClasses: 10, seed: 7 });
    const convs = model.layers.filter((l) => l.getClassName() === 'Conv2D').length;
    const x = tf.tensor4d(values(inputSize * inputSize * 3, 5), [1, inputSize, inputSize, 3]);
    const labels = tf.oneHot(tf.tensor1d([3], 'int32'), 10);
    const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, vars);
      tf.dispose([value, ...Object.values(grads)]);
    });
    const ran = (k: string) => info.kernels.filter((e) => e.name === k).length;
    assert.ok(convs > 2, `${name} has ${convs} Conv2D layers`);
    assert.equal(ran(tf.Conv2DBackpropFilter), convs, 'one filter gradient per convolution');
    assert.equal(ran(tf.Conv2DBackpropInput), convs - 1, 'an input gradient for every convolution but the first');
    tf.dispose([x, labels]);
    model.dispose();
  });
}
