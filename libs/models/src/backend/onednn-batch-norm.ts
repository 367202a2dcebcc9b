import { tf } from './tf';
import { WasmBackend, withHeap } from './heap';
import { DnnlAddon } from './onednn-addon';
import { count, decline } from './onednn-kernels';
import { BN_TRAINING, BN_TRAINING_GRAD } from './batch-norm-training';

type KernelFunc = tf.KernelConfig['kernelFunc'];

/** x's shape as oneDNN's [N, C, H, W] over the same NHWC memory; any other rank as [rows, C, 1, 1]. */
function bnShape(x: tf.TensorInfo): Int32Array {
  const s = x.shape;
  const c = s[s.length - 1];
  if (s.length === 4) return Int32Array.from([s[0], c, s[1], s[2]]);
  return Int32Array.from([tf.util.sizeFromShape(s) / c, c, 1, 1]);
}

const eps = (attrs: unknown) => (attrs as { varianceEpsilon: number }).varianceEpsilon;

/** Whether the native kernels can take x: float32, rank ≥ 2, not empty. */
function nativeShape(x: tf.TensorInfo): boolean {
  return x.dtype === 'float32' && x.shape.length >= 2 && tf.util.sizeFromShape(x.shape) > 0;
}

/** FleetBatchNormTraining by oneDNN: [y, batch mean, biased batch variance] (statistics summed in float64 by the addon). */
export function onednnBatchNormTraining(addon: DnnlAddon, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, scale, offset } = args.inputs as Record<string, tf.TensorInfo>;
    if (!nativeShape(x)) return decline(BN_TRAINING, `x ${x.dtype} ${x.shape}`, fallback, args);
    const b = args.backend as WasmBackend;
    const c = x.shape[x.shape.length - 1];
    const outs = [b.makeOutput(x.shape, 'float32'), b.makeOutput([c], 'float32'), b.makeOutput([c], 'float32')];
    const ok = withHeap(b, [x, scale, offset, ...outs], ([xv, gv, bv, yv, mv, vv]) =>
      addon.batchNormForward(bnShape(x), eps(args.attrs), true, xv, gv, bv, mv, vv, yv),
    );
    if (ok) {
      count(BN_TRAINING);
      return outs;
    }
    for (const t of outs) b.disposeData(t.dataId);
    return decline(BN_TRAINING, addon.lastError(), fallback, args);
  };
}

/** FleetBatchNormTrainingGrad by oneDNN's training backward: [dx, dScale, dOffset]. */
export function onednnBatchNormTrainingGrad(addon: DnnlAddon, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { dy, x, mean, variance, scale, dMean, dVariance } = args.inputs as Record<string, tf.TensorInfo>;
    if (!nativeShape(x)) return decline(BN_TRAINING_GRAD, `x ${x.dtype} ${x.shape}`, fallback, args);
    const b = args.backend as WasmBackend;
    const c = x.shape[x.shape.length - 1];
    const outs = [b.makeOutput(x.shape, 'float32'), b.makeOutput([c], 'float32'), b.makeOutput([c], 'float32')];
    const ok = withHeap(b, [x, dy, mean, variance, scale, dMean, dVariance, ...outs], ([xv, dyv, mv, vv, gv, dmv, dvv, dxv, dgv, dbv]) =>
      addon.batchNormBackward(bnShape(x), eps(args.attrs), xv, dyv, mv, vv, gv, dmv, dvv, dxv, dgv, dbv),
    );
    if (ok) {
      count(BN_TRAINING_GRAD);
      return outs;
    }
    for (const t of outs) b.disposeData(t.dataId);
    return decline(BN_TRAINING_GRAD, addon.lastError(), fallback, args);
  };
}

/**
 * FusedBatchNorm (inference, frozen statistics) by oneDNN when mean, variance, offset and
 * scale are per channel ([C]); a missing offset or scale is zeros or ones.
 */
export function onednnFusedBatchNorm(addon: DnnlAddon, fallback: KernelFunc): KernelFunc {
  const kernel = tf.FusedBatchNorm;
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    if (!x || !mean || !variance || !nativeShape(x)) return fallback(args);
    const c = x.shape[x.shape.length - 1];
    const perChannel = (t: tf.TensorInfo | undefined) => !t || (t.dtype === 'float32' && tf.util.sizeFromShape(t.shape) === c);
    if (![mean, variance, offset, scale].every(perChannel)) return decline(kernel, 'statistics not of shape [C]', fallback, args);
    const b = args.backend as WasmBackend;
    const y = b.makeOutput(x.shape, 'float32');
    const made = [!scale ? b.makeOutput([c], 'float32') : null, !offset ? b.makeOutput([c], 'float32') : null];
    try {
      const [g, o] = [scale ?? made[0]!, offset ?? made[1]!];
      const ok = withHeap(b, [x, mean, variance, g, o, y], ([xv, mv, vv, gv, ov, yv]) => {
        if (!scale) gv.fill(1);
        if (!offset) ov.fill(0);
        return addon.batchNormForward(bnShape(x), eps(args.attrs), false, xv, gv, ov, mv, vv, yv);
      });
      if (ok) {
        count(kernel);
        return y;
      }
    } finally {
      for (const t of made) if (t) b.disposeData(t.dataId);
    }
    b.disposeData(y.dataId);
    return decline(kernel, addon.lastError(), fallback, args);
  };
}
