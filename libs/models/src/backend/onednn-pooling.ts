import { tf } from './tf';
import { WasmBackend, withHeap } from './heap';
import { DnnlAddon } from './onednn-addon';
import { count, decline } from './onednn-kernels';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Pool2DInfo = tf.backend_util.Conv2DInfo;
interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** The addon's 15 pooling parameters: N H W C OH OW KH KW SH SW PT PL PB PR max. */
export function poolParams(info: Pool2DInfo, max: boolean): Int32Array {
  const p = info.padInfo;
  return Int32Array.from([
    info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outHeight, info.outWidth,
    info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, p.top, p.left, p.bottom, p.right, max ? 1 : 0,
  ]);
}

function poolInfo(shape: number[], a: PoolAttrs): Pool2DInfo {
  return tf.backend_util.computePool2DInfo(shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
}

/**
 * oneDNN needs OH = (H + PT + PB − KH)/SH + 1 exactly; tfjs's 'ceil' rounding can give one
 * more output row than the padding covers. Such pools stay on wasm.
 */
function consistent(info: Pool2DInfo): boolean {
  const p = info.padInfo;
  const rows = Math.floor((info.inHeight + p.top + p.bottom - info.filterHeight) / info.strideHeight) + 1;
  const cols = Math.floor((info.inWidth + p.left + p.right - info.filterWidth) / info.strideWidth) + 1;
  return rows === info.outHeight && cols === info.outWidth;
}

/** Why oneDNN can't take this pool, or null. */
function unsupported(x: tf.TensorInfo, info: Pool2DInfo): string | null {
  if (x.dtype !== 'float32' || x.shape.length !== 4) return `input ${x.dtype} ${x.shape}`;
  if (info.dataFormat !== 'channelsLast') return 'NCHW';
  if (tf.util.sizeFromShape(info.outShape) === 0) return 'empty output';
  if (!consistent(info)) return `padding ${JSON.stringify(info.padInfo)} does not cover ${info.outHeight}×${info.outWidth} outputs`;
  return null;
}

/** MaxPool / AvgPool forward. */
export function onednnPool(addon: DnnlAddon, max: boolean, fallback: KernelFunc): KernelFunc {
  const kernel = max ? tf.MaxPool : tf.AvgPool;
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    if (x.shape.length !== 4) return decline(kernel, `rank ${x.shape.length}`, fallback, args);
    const info = poolInfo(x.shape, args.attrs as unknown as PoolAttrs);
    const why = unsupported(x, info);
    if (why) return decline(kernel, why, fallback, args);
    return run(addon, kernel, args, info.outShape, [x], ([xv, yv]) => addon.pool(poolParams(info, max), xv, yv), fallback);
  };
}

/** MaxPoolGrad (inputs dy, input, output) / AvgPoolGrad (dy, input): dx. */
export function onednnPoolGrad(addon: DnnlAddon, max: boolean, fallback: KernelFunc): KernelFunc {
  const kernel = max ? tf.MaxPoolGrad : tf.AvgPoolGrad;
  return (args) => {
    const { dy, input } = args.inputs as Record<string, tf.TensorInfo>;
    if (input.shape.length !== 4) return decline(kernel, `rank ${input.shape.length}`, fallback, args);
    const info = poolInfo(input.shape, args.attrs as unknown as PoolAttrs);
    const why = unsupported(input, info) ?? (dy.dtype !== 'float32' ? `dy ${dy.dtype}` : null);
    if (why) return decline(kernel, why, fallback, args);
    const params = poolParams(info, max);
    return run(addon, kernel, args, input.shape, [input, dy], ([xv, dyv, dxv]) => addon.poolBackward(params, max ? xv : null, dyv, dxv), fallback);
  };
}

/**
 * Mean over H and W of an NHWC tensor (global average pooling: tf.layers.globalAveragePooling2d)
 * as an H×W average pool; every other Mean is wasm's.
 */
export function onednnMean(addon: DnnlAddon, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const x = args.inputs.x as tf.TensorInfo;
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    if (!isGlobalPool(x, axis)) return fallback(args);
    const [n, h, w, c] = x.shape;
    const info = poolInfo(x.shape, { filterSize: [h, w], strides: [1, 1], pad: 'valid' });
    const outShape = keepDims ? [n, 1, 1, c] : [n, c];
    return run(addon, tf.Mean, args, outShape, [x], ([xv, yv]) => addon.pool(poolParams(info, false), xv, yv), fallback);
  };
}

/** Whether Mean over `axis` of x is a global average pool of NHWC data: rank 4, axes exactly {1, 2}, float32. */
export function isGlobalPool(x: tf.TensorInfo, axis: number | number[]): boolean {
  if (x.shape.length !== 4 || x.dtype !== 'float32' || tf.util.sizeFromShape(x.shape) === 0) return false;
  const axes = tf.util.parseAxisParam(axis, x.shape).sort();
  return axes.length === 2 && axes[0] === 1 && axes[1] === 2;
}

/** Makes the output, runs `call` on heap views of `tensors` and the output, and falls back when the addon declines. */
function run(
  addon: DnnlAddon, kernel: string, args: Parameters<KernelFunc>[0], outShape: number[], tensors: tf.TensorInfo[],
  call: (views: Float32Array[]) => boolean, fallback: KernelFunc,
): tf.TensorInfo | tf.TensorInfo[] {
  const b = args.backend as WasmBackend;
  const out = b.makeOutput(outShape, 'float32');
  if (withHeap(b, [...tensors, out], call)) {
    count(kernel);
    return out;
  }
  b.disposeData(out.dataId);
  return decline(kernel, addon.lastError(), fallback, args);
}
