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
      if (batch === 1 && attrs.transposeB && !attrs.transposeA && m <= SMALL_M && n >= 8 * m) {
        if (!productByTransposes(addon, m, n, k, av, bv, cv)) return false;
        if (biasv || activation === 'relu') epilogue(cv, n, biasv, activation === 'relu');
        return true;
      }
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

/** Rows of A up to which productByTransposes is taken for A·Bᵀ (a dense layer's input gradient at small batches). */
const SMALL_M = 64;
let scratch = new Float32Array(0);

/**
 * C = A·Bᵀ (A m×k with m small, B n×k) as (B·Aᵀ)ᵀ with both operands untransposed: B·(Aᵀ)
 * into scratch, then transposed into C. oneDNN 2.6's sgemm with B transposed and a short A
 * (a dense layer's input gradient dY·Wᵀ at batch 32: m = 32, n = 9216, k = 2048) ran at half
 * its speed without transposes (15.8 ms against 9.5 ms here, quiet); the two transposes move
 * m×(k + n) floats, small beside the product's n×k weights.
 */
function productByTransposes(addon: DnnlAddon, m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): boolean {
  if (scratch.length < k * m + n * m) scratch = new Float32Array(k * m + n * m);
  const aT = scratch.subarray(0, k * m);
  const cT = scratch.subarray(k * m, k * m + n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < k; j++) aT[j * m + i] = a[i * k + j];
  if (!addon.matmul(false, false, n, m, k, b.subarray(0, n * k), aT, cT)) return false;
  for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) c[i * n + j] = cT[j * m + i];
  return true;
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
