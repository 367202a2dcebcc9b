import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { onednnSkip, values } from './testing';
import { BackendName } from './init-backend';
import { onednnKernelStats, resetOnednnKernelStats } from './onednn-kernels';
import { createModel } from '../zoo';

/** Loss and the gradient of every trainable weight for one training-mode batch. */
function modelGradients(name: string, inputSize: number, batch: number, numClasses: number): [string, Float32Array][] {
  const model = createModel(name, { inputSize, numClasses, seed: 7 });
  // Dropout masks come from each backend's own RNG; the comparison needs the same function.
  for (const layer of model.layers) {
    if (layer.getClassName() === 'Dropout') (layer as unknown as { rate: number }).rate = 0;
  }
  const x = tf.tensor4d(values(batch * inputSize * inputSize * 3, 5), [batch, inputSize, inputSize, 3]);
  const labels = tf.oneHot(tf.tensor1d(Array.from({ length: batch }, (_, i) => (i * 7) % numClasses), 'int32'), numClasses);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const { value, grads } = tf.variableGrads(
    () => tf.losses.softmaxCrossEntropy(labels, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar,
    vars,
  );
  // Layer names are uniquified per process (conv1 → conv1_2), so entries pair up by position.
  const out: [string, Float32Array][] = [['loss', value.dataSync() as Float32Array]];
  for (const v of vars) out.push([v.name, grads[v.name].dataSync() as Float32Array]);
  tf.dispose([x, labels, value, ...Object.values(grads)]);
  model.dispose();
  return out;
}

function normRelError(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
}

// wasm with this project's kernels, and onednn (oneDNN's convolutions and products on the same
// heap), each against the cpu backend's gradients of the same batch.
for (const backend of ['wasm', 'onednn'] as BackendName[]) {
  for (const [name, inputSize, batch, numClasses] of [
    ['resnet20', 16, 2, 10],
    ['alexnet', 64, 2, 10],
  ] as const) {
    const skip = backend === 'onednn' ? onednnSkip() : false;
    test(`${name} at ${inputSize}×${inputSize}: every weight gradient on ${backend} matches cpu`, { skip }, async (t) => {
      await initBackend({ backend });
      resetOnednnKernelStats();
      const got = modelGradients(name, inputSize, batch, numClasses);
      if (backend === 'onednn') {
        // Every convolution and both gradients ran on oneDNN, none fell back to wasm.
        const { ran, declined } = onednnKernelStats();
        assert.deepEqual(declined, {});
        for (const k of [tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter]) assert.ok(ran[k] > 0, `${k} never ran on oneDNN`);
      }
      await initBackend({ backend: 'cpu' });
      const cpu = modelGradients(name, inputSize, batch, numClasses);
      assert.equal(got.length, cpu.length);
      assert.ok(got.length > 5);
      let worst = 0;
      for (let i = 0; i < cpu.length; i++) {
        const [key, expected] = cpu[i];
        assert.equal(got[i][1].length, expected.length, key);
        const err = normRelError(got[i][1], expected);
        // Float32 sums in another order through a deep net; measured worst below 1e-5.
        assert.ok(err < 1e-4, `${key}: relative error ${err}`);
        worst = Math.max(worst, err);
      }
      t.diagnostic(`worst relative error over ${cpu.length - 1} weights: ${worst.toExponential(2)}`);
    });
  }
}
