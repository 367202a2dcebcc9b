import { tf } from './tf';
import { WasmOps } from './wasm-ops';

type KernelFunc = tf.KernelConfig['kernelFunc'];

/*
 * Split and concatenation along an inner axis (grouped convolution splits channels into
 * groups and concatenates them back): the stock wasm kernels copy one innermost run at a
 * time from JavaScript, ~100× slower than a transpose for 4-channel groups. Equal parts go
 * through one wasm transpose that makes each part contiguous.
 */

function innerSplitShape(shape: number[], axis: number, parts: number): [number, number] {
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const part = (shape[axis] / parts) * shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  return [outer, part];
}

export function splitKernel(stock: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const ax = tf.util.parseAxisParam(axis, x.shape)[0];
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax) as number[];
    const parts = sizes.length;
    if (ax === 0 || parts < 2 || x.dtype !== 'float32' || sizes.some((s) => s !== sizes[0])) {
      return stock(args);
    }
    const ops = new WasmOps(args.backend as WasmOps['backend']);
    try {
      const [outer, part] = innerSplitShape(x.shape, ax, parts);
      const grouped = ops.transpose(ops.reshape(x, [outer, parts, part]), [1, 0, 2]);
      const shape = x.shape.slice();
      shape[ax] = sizes[0];
      return sizes.map((_, g) => ops.keep(ops.reshape(ops.slice(grouped, [g, 0, 0], [1, outer, part]), shape)));
    } finally {
      ops.dispose();
    }
  };
}

export function concatKernel(stock: KernelFunc): KernelFunc {
  return (args) => {
    const inputs = args.inputs as unknown as tf.TensorInfo[];
    const first = inputs[0];
    const ax = tf.util.parseAxisParam((args.attrs as unknown as { axis: number }).axis, first.shape)[0];
    const same = inputs.every((t) => t.dtype === 'float32' && tf.util.arraysEqual(t.shape, first.shape));
    if (ax === 0 || inputs.length < 2 || !same || tf.util.sizeFromShape(first.shape) === 0) return stock(args);
    const ops = new WasmOps(args.backend as WasmOps['backend']);
    try {
      const parts = inputs.length;
      const [outer, part] = innerSplitShape(first.shape, ax, 1);
      const rows = inputs.map((t) => ops.reshape(t, [1, outer, part]));
      const stacked = stock({ inputs: rows as unknown as tf.NamedTensorInfoMap, attrs: { axis: 0 }, backend: args.backend }) as tf.TensorInfo;
      ops.adopt(stacked);
      const shape = first.shape.slice();
      shape[ax] *= parts;
      return ops.keep(ops.reshape(ops.transpose(stacked, [1, 0, 2]), shape));
    } finally {
      ops.dispose();
    }
  };
}

/**
 * Slice reading the wasm heap in place. The stock kernel starts with readSync, which copies
 * the whole input out of the heap on every call (so splitting into G parts copied it G times).
 */
export function sliceKernel(stock: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.dtype === 'string') return stock(args);
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size?: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const backend = args.backend as unknown as {
      makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
      typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
    };
    const out = backend.makeOutput(s, x.dtype);
    if (tf.util.sizeFromShape(s) === 0) return out;
    const xv = backend.typedArrayFromHeap(x);
    const ov = backend.typedArrayFromHeap(out);
    copySlice(xv, x.shape, b, s, ov);
    return out;
  };
}

function copySlice(
  xv: Float32Array | Int32Array | Uint8Array,
  shape: number[],
  begin: number[],
  size: number[],
  ov: Float32Array | Int32Array | Uint8Array,
): void {
  const rank = shape.length;
  const strides = new Array<number>(rank);
  strides[rank - 1] = 1;
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  // Axes after k are taken whole, so each copy is one contiguous run.
  let k = rank - 1;
  while (k > 0 && size[k] === shape[k]) k--;
  const run = size[k] * strides[k];
  const idx = new Array<number>(k).fill(0);
  let pos = 0;
  for (;;) {
    let offset = begin[k] * strides[k];
    for (let j = 0; j < k; j++) offset += (begin[j] + idx[j]) * strides[j];
    ov.set(xv.subarray(offset, offset + run), pos);
    pos += run;
    let j = k - 1;
    while (j >= 0 && ++idx[j] === size[j]) idx[j--] = 0;
    if (j < 0) break;
  }
}
