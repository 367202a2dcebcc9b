import { tf } from './tf';
import { WasmBackend, withHeap } from './heap';
import { DnnlAddon } from './onednn-addon';
import { count } from './onednn-kernels';

type KernelFunc = tf.KernelConfig['kernelFunc'];

/**
 * BatchMatMul and _FusedMatMul (bias, ReLU or none: the dense layers) by oneDNN's sgemm, one
 * call per batch entry on subarrays of the heap. Broadcast batches other than 1 against B,
 * other activations and non-float inputs run the wasm kernel.
 */
export function onednnMatMul(addon: DnnlAddon, fused: boolean, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = args.attrs as unknown as { transposeA: boolean; transposeB: boolean; activation?: string };
    const activation = fused ? attrs.activation ?? 'linear' : 'linear';
    if (!a || !b || a.dtype !== 'float32' || b.dtype !== 'float32' || a.shape.length < 2 || b.shape.length < 2) return fallback(args);
    if (preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) return fallback(args);
    const [ra, rb] = [a.shape.length, b.shape.length];
    const m = attrs.transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
    const k = attrs.transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
    const n = attrs.transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
    const batchA = tf.util.sizeFromShape(a.shape.slice(0, -2));
    const batchB = tf.util.sizeFromShape(b.shape.slice(0, -2));
    const batch = Math.max(batchA, batchB);
    if ((batchA !== batchB && batchA !== 1 && batchB !== 1) || m * n * k === 0) return fallback(args);
    if (bias && tf.util.sizeFromShape(bias.shape) !== n) return fallback(args);
    const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const backend = args.backend as WasmBackend;
    const c = backend.makeOutput([...outer, m, n], 'float32');
    const ok = withHeap(backend, bias ? [a, b, c, bias] : [a, b, c], ([av, bv, cv, biasv]) => {
      for (let i = 0; i < batch; i++) {
        const ai = batchA === 1 ? 0 : i;
        const bi = batchB === 1 ? 0 : i;
        const ci = cv.subarray(i * m * n, (i + 1) * m * n);
        const done = addon.matmul(attrs.transposeA, attrs.transposeB, m, n, k, av.subarray(ai * m * k, (ai + 1) * m * k), bv.subarray(bi * k * n, (bi + 1) * k * n), ci);
        if (!done) return false;
        if (biasv || activation === 'relu') epilogue(ci, n, biasv, activation === 'relu');
      }
      return true;
    });
    if (ok) {
      count(fused ? tf._FusedMatMul : tf.BatchMatMul);
      return c;
    }
    backend.disposeData(c.dataId);
    return fallback(args);
  };
}

/** c += bias per column, then ReLU: one pass over the product (m×n, small beside the GEMM). */
function epilogue(c: Float32Array, n: number, bias: Float32Array | undefined, relu: boolean): void {
  for (let i = 0; i < c.length; i += n) {
    for (let j = 0; j < n; j++) {
      const v = c[i + j] + (bias ? bias[j] : 0);
      c[i + j] = relu && v < 0 ? 0 : v;
    }
  }
}
