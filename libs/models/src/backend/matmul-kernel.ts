import { tf } from './tf';
import { WasmOps } from './wasm-ops';

type KernelFunc = tf.KernelConfig['kernelFunc'];

/**
 * BatchMatMul with transposed operands (the dense-layer gradients) rewritten as plain
 * products. XNNPACK packs the right operand on every call and the stock transposed paths
 * are slow: aᵀ·b runs 5× faster with a transposed explicitly; a·bᵀ with a large b (dx of a
 * dense layer: dy·Wᵀ) is computed as (b·aᵀ)ᵀ so only the small operand gets packed.
 */
export function matMulKernel(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const batch = (t: tf.TensorInfo) => tf.util.sizeFromShape(t.shape.slice(0, -2));
    if (transposeA === transposeB || batch(a) !== 1 || batch(b) !== 1 || a.dtype !== 'float32' || b.dtype !== 'float32') {
      return stock(args);
    }
    const ops = new WasmOps(args.backend as WasmOps['backend']);
    const run = (x: tf.TensorInfo, y: tf.TensorInfo) => ops.adopt(stock({ inputs: { a: x, b: y }, attrs: { transposeA: false, transposeB: false }, backend: args.backend }) as tf.TensorInfo);
    const mat = (t: tf.TensorInfo) => ops.reshape(t, t.shape.slice(-2));
    try {
      const outShape = [...a.shape.slice(0, -2).map(() => 1)];
      if (transposeA) {
        const at = ops.transpose(mat(a), [1, 0]);
        const out = run(at, mat(b));
        return ops.keep(ops.reshape(out, [...outShape, ...out.shape.slice(-2)]));
      }
      const sizeA = tf.util.sizeFromShape(a.shape);
      const sizeB = tf.util.sizeFromShape(b.shape);
      const m = a.shape[a.shape.length - 2];
      const n = b.shape[b.shape.length - 2];
      if (sizeB <= sizeA + m * n) return stock(args);
      const outT = run(mat(b), ops.transpose(mat(a), [1, 0]));
      return ops.keep(ops.reshape(ops.transpose(ops.reshape(outT, [n, m]), [1, 0]), [...outShape, m, n]));
    } finally {
      ops.dispose();
    }
  };
}
