import { tf } from './tf';
import { WasmBackend, leadingAxes, withHeap } from './heap';
import { WasmOps } from './wasm-ops';
import { FleetKernels, fleetKernels, heapOffset } from './simd/fleet-kernels';

type KernelFunc = tf.KernelConfig['kernelFunc'];
interface ReduceAttrs {
  axis: number | number[];
  keepDims: boolean;
}

/**
 * Sum/Mean over leading axes (batch-norm statistics, bias and BN-parameter gradients) as one
 * pass of column sums in JavaScript: ~0.6 ns/element, where the stock wasm kernels transpose
 * the whole tensor first (2.5–4× slower) and a ones-row BatchMatMul repacks its operand
 * (30× slower).
 */
export function leadingReduceKernel(mean: boolean, stock: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as ReduceAttrs;
    const axes = tf.util.parseAxisParam(axis, x.shape);
    const k = leadingAxes(axes, x.shape.length);
    if (k === 0 || x.dtype !== 'float32') {
      if (!stock) throw new Error('stock wasm reduction kernel missing');
      return stock(args);
    }
    const rows = x.shape.slice(0, k).reduce((a, b) => a * b, 1);
    const cols = x.shape.slice(k).reduce((a, b) => a * b, 1);
    const outShape = keepDims ? [...x.shape.slice(0, k).map(() => 1), ...x.shape.slice(k)] : x.shape.slice(k);
    const backend = args.backend as WasmBackend;
    const out = backend.makeOutput(outShape, 'float32');
    withHeap(backend, [x, out], ([xv, ov]) => columnSums(xv, rows, cols, mean ? 1 / rows : 1, ov));
    return out;
  };
}

/** Identity and same-dtype Cast share the buffer (tensors are immutable), as the cpu backend does. */
export function sharingIdentityKernel(stock: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const dtype = (args.attrs as { dtype?: tf.DataType } | undefined)?.dtype ?? x.dtype;
    if (dtype !== x.dtype || x.dtype === 'string') {
      if (!stock) throw new Error('stock wasm Cast kernel missing');
      return stock(args);
    }
    (args.backend as WasmBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

/**
 * FusedBatchNorm (inference, or frozen statistics): with C a multiple of 4 one SIMD pass
 * y = (x − μ)·k + β, k = γ/√(σ²+ε); otherwise y = x·k + (β − μ·k) as two vectorised broadcast
 * passes. Both instead of the stock scalar loop.
 */
export function batchNormKernel(stock: KernelFunc | undefined): KernelFunc {
  return (args) => {
    const { x, mean, variance, offset, scale } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const eps = (args.attrs as unknown as { varianceEpsilon: number }).varianceEpsilon;
    const c = x!.shape[x!.shape.length - 1];
    const perChannel = (t: tf.TensorInfo | undefined) => !t || tf.util.sizeFromShape(t.shape) === c;
    if (![mean, variance, offset, scale].every(perChannel) || x!.dtype !== 'float32') {
      if (!stock) throw new Error('stock wasm FusedBatchNorm kernel missing');
      return stock(args);
    }
    const backend = args.backend as WasmBackend;
    const kernels = fleetKernels(backend);
    if (kernels && c % 4 === 0) return batchNormSimd(backend, kernels, x!, mean!, variance!, scale, offset, eps);
    const ops = new WasmOps(backend as unknown as WasmOps['backend']);
    try {
      const k = ops.run('Fill', {}, { shape: [c], value: 0, dtype: 'float32' });
      const b = ops.run('Fill', {}, { shape: [c], value: 0, dtype: 'float32' });
      const parts = [mean!, variance!, k, b, ...(scale ? [scale] : []), ...(offset ? [offset] : [])];
      withHeap(backend, parts, ([mv, vv, kv, bv, ...rest]) => {
        const sv = scale ? rest[0] : null;
        const ov = offset ? rest[scale ? 1 : 0] : null;
        for (let j = 0; j < c; j++) {
          kv[j] = (sv ? sv[j] : 1) / Math.sqrt(vv[j] + eps);
          bv[j] = (ov ? ov[j] : 0) - mv[j] * kv[j];
        }
      });
      const scaled = ops.run('Multiply', { a: x!, b: k });
      return ops.keep(ops.run('Add', { a: scaled, b }));
    } finally {
      ops.dispose();
    }
  };
}

function batchNormSimd(
  b: WasmBackend,
  kernels: FleetKernels,
  x: tf.TensorInfo,
  mean: tf.TensorInfo,
  variance: tf.TensorInfo,
  scale: tf.TensorInfo | undefined,
  offset: tf.TensorInfo | undefined,
  eps: number,
): tf.TensorInfo {
  const c = x.shape[x.shape.length - 1];
  const y = b.makeOutput(x.shape, 'float32');
  const coef = b.makeOutput([2 * c], 'float32');
  try {
    const [vv, kv, sv, ov] = [variance, coef, scale, offset].map((t) => (t ? b.typedArrayFromHeap(t) : null));
    for (let j = 0; j < c; j++) {
      kv![j] = (sv ? sv[j] : 1) / Math.sqrt(vv![j] + eps);
      kv![c + j] = ov ? ov[j] : 0;
    }
    const k = heapOffset(b, coef);
    kernels.channel_affine(heapOffset(b, x), 0, heapOffset(b, y), tf.util.sizeFromShape(x.shape) / c, c, heapOffset(b, mean), k, 0, k + 4 * c);
  } finally {
    b.disposeData(coef.dataId);
  }
  return y;
}

function columnSums(xv: Float32Array, rows: number, cols: number, scale: number, out: Float32Array): void {
  const acc = new Float64Array(cols);
  // Eight rows per accumulator update: 2.7× faster than one (the Float64Array
  // read-modify-write, not the loads, bounds the simple loop).
  const block = 8 * cols;
  let r = 0;
  let base = 0;
  for (; r + 8 <= rows; r += 8, base += block) {
    for (let c = 0; c < cols; c++) {
      let i = base + c;
      let t = xv[i];
      t += xv[(i += cols)];
      t += xv[(i += cols)];
      t += xv[(i += cols)];
      t += xv[(i += cols)];
      t += xv[(i += cols)];
      t += xv[(i += cols)];
      t += xv[(i += cols)];
      acc[c] += t;
    }
  }
  for (; r < rows; r++, base += cols) {
    for (let c = 0; c < cols; c++) acc[c] += xv[base + c];
  }
  for (let c = 0; c < cols; c++) out[c] = acc[c] * scale;
}
