import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { onOnednnThenCpu, onednnSkip, relError, values } from './testing';
import { BN_TRAINING, BN_TRAINING_GRAD } from './batch-norm-training';
import { onednnKernelStats, resetOnednnKernelStats } from './onednn-kernels';

// oneDNN's batch norm (onednn-batch-norm.ts) against the cpu backend running tfjs-layers' ops
// (moments + batchNorm), over odd shapes: channel counts 1 to 64 (not multiples of oneDNN's
// 16-lane vectors), row counts around the addon's 64-row statistics blocks, rank 2 and 4.
const skip = onednnSkip();
const EPS = 1e-5;
const SHAPES = [[4, 7, 5, 8], [2, 9, 9, 3], [3, 1, 1, 17], [130, 12], [2, 8, 8, 64], [1, 3, 3, 5], [65, 1], [2, 5, 3, 33]];

/** y, batch mean and variance: the kernel on onednn, tfjs-layers' training ops on cpu. */
function bnTraining(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor[] {
  if (tf.getBackend() === 'onednn') {
    return tf.engine().runKernel(BN_TRAINING, { x, scale: gamma, offset: beta }, { varianceEpsilon: EPS } as never) as tf.Tensor[];
  }
  const { mean, variance } = tf.moments(x, x.shape.slice(0, -1).map((_, i) => i));
  return [tf.batchNorm(x, mean, variance, beta, gamma, EPS), mean, variance];
}

const inputs = (shape: number[], offset: number) => {
  const c = shape[shape.length - 1];
  const size = shape.reduce((a, b) => a * b, 1);
  // A large common offset checks that the variance does not cancel catastrophically.
  const x = tf.tensor(values(size, 21), shape).mul(2).add(offset);
  return { x, gamma: tf.tensor1d(values(c, 22)).add(1.5), beta: tf.tensor1d(values(c, 23)), c, size };
};

/** Forward outputs, and the gradients of a loss reading y, mean and variance, then of one reading y only. */
function training(shape: number[], offset: number): Float32Array[] {
  return tf.tidy(() => {
    const { x, gamma, beta, c, size } = inputs(shape, offset);
    const probe = tf.tensor(values(size, 24), shape);
    const [pm, pv] = [tf.tensor1d(values(c, 25)), tf.tensor1d(values(c, 26))];
    const all = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
      const [y, mean, variance] = bnTraining(xx, g, b);
      return tf.addN([tf.sum(tf.mul(y, probe)), tf.sum(tf.mul(mean, pm)), tf.sum(tf.mul(variance, pv))]) as tf.Scalar;
    };
    const onlyY = (xx: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(bnTraining(xx, g, b)[0], probe)) as tf.Scalar;
    const outs = [...bnTraining(x, gamma, beta), ...tf.grads(all)([x, gamma, beta]), ...tf.grads(onlyY)([x, gamma, beta])];
    return outs.map((t) => t.dataSync() as Float32Array);
  });
}

/** y, mean and variance of the same float32 input in float64. */
function float64Forward(shape: number[], offset: number): Float64Array[] {
  const [x, gamma, beta] = tf.tidy(() => {
    const t = inputs(shape, offset);
    return [t.x, t.gamma, t.beta].map((v) => v.dataSync() as Float32Array);
  });
  const c = shape[shape.length - 1];
  const rows = x.length / c;
  const mean = new Float64Array(c);
  const variance = new Float64Array(c);
  for (let i = 0; i < x.length; i++) mean[i % c] += x[i] / rows;
  for (let i = 0; i < x.length; i++) variance[i % c] += (x[i] - mean[i % c]) ** 2 / rows;
  const y = Float64Array.from(x, (v, i) => ((v - mean[i % c]) / Math.sqrt(variance[i % c] + EPS)) * gamma[i % c] + beta[i % c]);
  return [y, mean, variance];
}

const NAMES = ['y', 'mean', 'variance', 'dx', 'dgamma', 'dbeta', 'dx (y only)', 'dgamma (y only)', 'dbeta (y only)'];

test('oneDNN batch-norm training forward and gradient match the cpu backend', { skip }, async () => {
  for (const shape of SHAPES) {
    for (const offset of [0.5, 100]) {
      resetOnednnKernelStats();
      const { onednn, cpu } = await onOnednnThenCpu(() => training(shape, offset));
      const stats = onednnKernelStats();
      assert.deepEqual(stats.declined, {}, `declined for ${shape}`);
      assert.ok(stats.ran[BN_TRAINING] === 3 && stats.ran[BN_TRAINING_GRAD] === 2, `ran natively for ${shape}: ${JSON.stringify(stats.ran)}`);
      // Offset 100: cpu's float32 moments are themselves only good to ~1e-5 there, so the
      // forward outputs are held to float64 and the gradients (which inherit cpu's error) to 1e-4.
      const exact = offset > 10 ? float64Forward(shape, offset) : null;
      for (let i = 0; i < NAMES.length; i++) {
        const err = exact && i < 3 ? relError(onednn[i], exact[i]) : relError(onednn[i], cpu[i]);
        const tol = exact && i >= 3 ? 1e-4 : 1e-5;
        assert.ok(err < tol, `${NAMES[i]} for ${shape} offset ${offset}: rel err ${err}`);
      }
    }
  }
});

test('oneDNN batch-norm inference (FusedBatchNorm, with and without scale and offset) matches cpu', { skip }, async () => {
  for (const shape of SHAPES) {
    const run = () =>
      tf.tidy(() => {
        const { x, gamma, beta, c } = inputs(shape, 0.5);
        const mean = tf.tensor1d(values(c, 27));
        const variance = tf.tensor1d(values(c, 28)).abs().add(0.1);
        return [tf.batchNorm(x, mean, variance, beta, gamma, EPS), tf.batchNorm(x, mean, variance, undefined, undefined, EPS)].map(
          (t) => t.dataSync() as Float32Array,
        );
      });
    resetOnednnKernelStats();
    const { onednn, cpu } = await onOnednnThenCpu(run);
    assert.equal(onednnKernelStats().ran[tf.FusedBatchNorm], 2, `FusedBatchNorm ran natively for ${shape}`);
    for (let i = 0; i < 2; i++) {
      const err = relError(onednn[i], cpu[i]);
      assert.ok(err < 1e-5, `inference ${i === 0 ? 'affine' : 'plain'} for ${shape}: rel err ${err}`);
    }
  }
});
