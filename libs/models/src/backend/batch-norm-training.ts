import { tf } from './tf';
import { WasmBackend, onWasmHeap } from './heap';
import { FleetKernels, fleetKernels, heapOffset } from './simd/fleet-kernels';

/**
 * Batch norm in training mode as one kernel and one gradient kernel (fleet-kernels.wat):
 * statistics in one read of x, y in one pass; the gradient in one reduction and one pass.
 * The stock layer runs moments (Mean, Sub, Square, Mean) and the normalisation as separate
 * ops, and its gradient flows back through each of them: about 20 passes over the tensor
 * against 4 here.
 */
export const BN_TRAINING = 'FleetBatchNormTraining';
export const BN_TRAINING_GRAD = 'FleetBatchNormTrainingGrad';

type KernelFunc = tf.KernelConfig['kernelFunc'];
interface BnAttrs {
  varianceEpsilon: number;
}

/**
 * Whether BN_TRAINING can run on x now: float32 on wasm with our kernels and C a multiple of
 * 4, or on onednn (oneDNN's batch norm, any C; register-onednn-backend.ts).
 */
export function canFuseBatchNorm(x: tf.Tensor): boolean {
  if (x.rank < 2 || x.dtype !== 'float32' || !onWasmHeap() || tf.getKernel(BN_TRAINING, tf.getBackend()) === undefined) return false;
  if (tf.getBackend() === 'onednn') return true;
  return x.shape[x.rank - 1] % 4 === 0 && fleetKernels(tf.backend()) !== null;
}

/** Inputs x [..., C], scale [C], offset [C] → [y, batch mean [C], biased batch variance [C]]. */
export const batchNormTrainingKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { x, scale, offset } = inputs as Record<string, tf.TensorInfo>;
  const eps = (attrs as unknown as BnAttrs).varianceEpsilon;
  const b = backend as WasmBackend;
  const { kernels, c, rows } = setup(b, x);
  const y = b.makeOutput(x.shape, 'float32');
  const mean = b.makeOutput([c], 'float32');
  const variance = b.makeOutput([c], 'float32');
  const acc = channelSums(b, (accOff) => kernels.bn_stats(heapOffset(b, x), rows, c, accOff), c);
  const coef = b.makeOutput([c], 'float32');
  try {
    const [xv, gv, mv, vv, kv] = [x, scale, mean, variance, coef].map((t) => b.typedArrayFromHeap(t));
    for (let j = 0; j < c; j++) {
      // Shifted by x[row 0]: Σa and Σa² of a = x − x₀ give the variance without cancellation.
      const d = acc[j] / rows;
      const m = xv[j] + d;
      const v = Math.max(0, acc[c + j] / rows - d * d);
      const k = gv[j] / Math.sqrt(v + eps);
      mv[j] = m;
      vv[j] = v;
      kv[j] = k;
    }
    // y = (x − μ)·k + β
    kernels.channel_affine(heapOffset(b, x), 0, heapOffset(b, y), rows, c, heapOffset(b, mean), heapOffset(b, coef), 0, heapOffset(b, offset));
  } finally {
    b.disposeData(coef.dataId);
  }
  return [y, mean, variance];
};

/**
 * Inputs dy, x, mean, variance, scale, dMean, dVariance (the last two: gradients reaching the
 * batch statistics themselves, zeros when only y is used) → [dx, dScale, dOffset].
 */
export const batchNormTrainingGradKernel: KernelFunc = ({ inputs, backend, attrs }) => {
  const { dy, x, mean, variance, scale, dMean, dVariance } = inputs as Record<string, tf.TensorInfo>;
  const eps = (attrs as unknown as BnAttrs).varianceEpsilon;
  const b = backend as WasmBackend;
  const { kernels, c, rows } = setup(b, x);
  const dx = b.makeOutput(x.shape, 'float32');
  const dScale = b.makeOutput([c], 'float32');
  const dOffset = b.makeOutput([c], 'float32');
  const acc = channelSums(b, (accOff) => kernels.bn_grad_sums(heapOffset(b, dy), heapOffset(b, x), rows, c, heapOffset(b, mean), accOff), c);
  const coef = b.makeOutput([3 * c], 'float32');
  try {
    const views = [mean, variance, scale, dMean, dVariance, dScale, dOffset, coef].map((t) => b.typedArrayFromHeap(t));
    const [, vv, gv, dmv, dvv, dsv, dov, kv] = views;
    for (let j = 0; j < c; j++) {
      const rstd = 1 / Math.sqrt(vv[j] + eps);
      const sumDy = acc[j];
      const sumDyXc = acc[c + j];
      const k = gv[j] * rstd;
      // dx = k·(dy − Σdy/M − (x−μ)·rstd²·Σdy(x−μ)/M) + dμ/M + dσ²·2(x−μ)/M = (x−μ)·a + dy·k + e
      kv[j] = (-k * rstd * rstd * sumDyXc) / rows + (2 * dvv[j]) / rows;
      kv[c + j] = k;
      kv[2 * c + j] = (-k * sumDy) / rows + dmv[j] / rows;
      dsv[j] = sumDyXc * rstd;
      dov[j] = sumDy;
    }
    const off = heapOffset(b, coef);
    kernels.channel_affine(heapOffset(b, x), heapOffset(b, dy), heapOffset(b, dx), rows, c, heapOffset(b, mean), off, off + 4 * c, off + 8 * c);
  } finally {
    b.disposeData(coef.dataId);
  }
  return [dx, dScale, dOffset];
};

export const batchNormTrainingGrad: tf.GradConfig = {
  kernelName: BN_TRAINING,
  inputsToSave: ['x', 'scale'],
  outputsToSave: [false, true, true],
  gradFunc: (dys, saved, attrs) => {
    const [dy, dMean, dVariance] = dys as tf.Tensor[];
    const [x, scale, mean, variance] = saved as tf.Tensor[];
    // One kernel gives all three; the tape asks for them one by one.
    const [dx, dScale, dOffset] = tf.engine().runKernel(
      BN_TRAINING_GRAD,
      { dy, x, mean, variance, scale, dMean, dVariance },
      attrs as unknown as tf.NamedAttrMap,
    ) as tf.Tensor[];
    return { x: () => dx, scale: () => dScale, offset: () => dOffset };
  },
};

function setup(b: WasmBackend, x: tf.TensorInfo): { kernels: FleetKernels; c: number; rows: number } {
  const kernels = fleetKernels(b);
  if (!kernels) throw new Error(`${BN_TRAINING}: the SIMD kernels can't reach this wasm backend's memory`);
  const c = x.shape[x.shape.length - 1];
  if (c % 4 !== 0 || x.dtype !== 'float32') throw new Error(`${BN_TRAINING}: needs float32 and channels % 4 == 0, got ${x.dtype} ${x.shape}`);
  return { kernels, c, rows: tf.util.sizeFromShape(x.shape) / c };
}

/** Runs a reduction into 2·C float64 totals on the heap and returns a copy of them. */
function channelSums(b: WasmBackend, run: (accOffset: number) => void, c: number): Float64Array {
  // 4·C floats = 2·C doubles, plus 2 floats so the doubles can start 8-byte aligned.
  const scratch = b.makeOutput([4 * c + 2], 'float32');
  try {
    const base = heapOffset(b, scratch);
    const aligned = (base + 7) & ~7;
    const buffer = b.typedArrayFromHeap(scratch).buffer;
    new Float64Array(buffer, aligned, 2 * c).fill(0);
    run(aligned);
    return new Float64Array(buffer, aligned, 2 * c).slice();
  } finally {
    b.disposeData(scratch.dataId);
  }
}
