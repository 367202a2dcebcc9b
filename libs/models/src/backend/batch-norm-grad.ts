import { tf } from './tf';
import { WasmBackend, leadingAxes, onWasmHeap, withHeap } from './heap';
import { isGlobalPool } from './onednn-pooling';

/** Kernel: attrs.shape filled with v (length C) repeated over the leading axes, times attrs.scale. */
export const BROADCAST_CHANNELS = 'FleetBroadcastChannels';

export const broadcastChannelsKernel: tf.KernelConfig['kernelFunc'] = ({ inputs, backend, attrs }) => {
  const { v } = inputs as Record<string, tf.TensorInfo>;
  const { shape, scale } = attrs as unknown as { shape: number[]; scale: number };
  const b = backend as WasmBackend;
  const out = b.makeOutput(shape, 'float32');
  withHeap(b, [v, out], ([vv, ov]) => {
    const c = vv.length;
    const row = new Float32Array(c);
    for (let j = 0; j < c; j++) row[j] = vv[j] * scale;
    // One row, then doubling copies: log2(rows) memmoves instead of one set() per row.
    ov.set(row, 0);
    for (let filled = c; filled < ov.length; filled *= 2) ov.copyWithin(filled, 0, Math.min(filled, ov.length - filled));
  });
  return out;
};

/**
 * FusedBatchNorm gradient without Tile: on wasm, per-channel sums as matrix products and one
 * broadcast multiply for dx; other backends keep the stock gradient (the reference).
 */
export function fusedBatchNormGrad(stock: tf.GradConfig): tf.GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved as tf.Tensor[];
      const c = x.shape[x.shape.length - 1];
      const perChannel = (t: tf.Tensor | undefined) => !t || (t.size === c && t.shape[t.rank - 1] === c);
      if (!onWasmHeap() || !perChannel(mean) || !perChannel(variance) || !perChannel(scale)) {
        return stock.gradFunc(dy, saved, attrs);
      }
      const d = dy as tf.Tensor;
      const eps = (attrs as { varianceEpsilon: number }).varianceEpsilon;
      const m = tf.reshape(mean, [c]);
      const rstd = tf.rsqrt(tf.add(tf.reshape(variance, [c]), eps));
      const gamma = scale ? tf.reshape(scale, [c]) : tf.onesLike(rstd);
      const lead = x.shape.slice(0, -1).map((_, i) => i);
      const sumDy = tf.sum(d, lead);
      const sumDyXmu = tf.sum(tf.mul(d, tf.sub(x, m)), lead);
      const gRstd = tf.mul(gamma, rstd);
      return {
        x: () => tf.mul(d, gRstd),
        mean: () => tf.reshape(tf.neg(tf.mul(gRstd, sumDy)), mean.shape),
        variance: () => tf.reshape(tf.mul(tf.mul(gRstd, tf.mul(tf.square(rstd), -0.5)), sumDyXmu), variance.shape),
        scale: () => tf.reshape(tf.mul(rstd, sumDyXmu), scale ? scale.shape : [c]),
        offset: () => tf.reshape(sumDy, scale ? scale.shape : [c]),
      };
    },
  };
}

/**
 * Mean gradient over leading axes as one broadcast write (stock: ones(x.shape) · dy / n); on
 * onednn, over H and W of NHWC as an average pool's gradient.
 */
export function meanGrad(stock: tf.GradConfig): tf.GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as tf.Tensor[];
      const axis = (attrs as { axis: number | number[] }).axis;
      if (tf.getBackend() === 'onednn' && isGlobalPool(x, axis)) {
        // Global average pooling: its gradient as the H×W average pool's (oneDNN), not ones · dy / n.
        const [n, h, w, c] = x.shape;
        const pool = { filterSize: [h, w], strides: [1, 1], pad: 'valid' };
        return { x: () => tf.engine().runKernel(tf.AvgPoolGrad, { dy: tf.reshape(dy as tf.Tensor, [n, 1, 1, c]), input: x }, pool as never) as tf.Tensor };
      }
      const axes = tf.util.parseAxisParam(axis, x.shape);
      const k = leadingAxes(axes, x.rank);
      if (!onWasmHeap() || k === 0 || x.dtype !== 'float32') return stock.gradFunc(dy, saved, attrs);
      const rows = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
      return {
        x: () =>
          tf.engine().runKernel(BROADCAST_CHANNELS, { v: dy as tf.Tensor }, {
            shape: x.shape,
            scale: 1 / rows,
          } as never) as tf.Tensor,
      };
    },
  };
}
