import { tf } from './tf';
import { WasmBackend, withHeap } from './heap';
import { conv2dInfo } from './conv-grad-kernels';
import { DnnlAddon } from './onednn-addon';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Conv2DInfo = tf.backend_util.Conv2DInfo;
type ConvAttrs = {
  strides: number | [number, number];
  pad: unknown;
  dataFormat?: 'NHWC' | 'NCHW';
  dimRoundingMode?: unknown;
  dilations?: number | [number, number];
  activation?: string;
};

/*
 * Kernels of the `onednn` backend: the wasm backend's tensors (NHWC, on its heap) handed to
 * oneDNN in place. Whatever oneDNN declines (NCHW, activations other than ReLU, a shape it has
 * no primitive for) runs the wasm kernel it replaces, and is counted so specs can tell.
 */

const ran = new Map<string, number>();
const declined = new Map<string, string[]>();

/** Calls that ran natively and that fell back to wasm (with why), per kernel, since the last reset. */
export function onednnKernelStats(): { ran: Record<string, number>; declined: Record<string, string[]> } {
  return { ran: Object.fromEntries(ran), declined: Object.fromEntries(declined) };
}

export function resetOnednnKernelStats(): void {
  ran.clear();
  declined.clear();
}

export function count(kernel: string): void {
  ran.set(kernel, (ran.get(kernel) ?? 0) + 1);
}

export function decline(kernel: string, why: string, fallback: KernelFunc, args: Parameters<KernelFunc>[0]) {
  const list = declined.get(kernel) ?? [];
  // The first few reasons are enough to say what was declined; a long run must not grow this.
  if (list.length < 16) list.push(why);
  declined.set(kernel, list);
  return fallback(args);
}

/**
 * Runs `call` over the heap views of `tensors` (the last of which may be optional) into `out`;
 * when the addon declines, frees `out` and falls back to the wasm kernel, recording why.
 */
function intoOutput(
  addon: DnnlAddon, kernel: string, backend: WasmBackend, out: tf.TensorInfo, tensors: tf.TensorInfo[],
  call: (views: Float32Array[]) => boolean, fallback: KernelFunc, args: Parameters<KernelFunc>[0],
): tf.TensorInfo | tf.TensorInfo[] {
  if (withHeap(backend, tensors, call)) {
    count(kernel);
    return out;
  }
  backend.disposeData(out.dataId);
  return decline(kernel, addon.lastError(), fallback, args);
}

/** The addon's 19 convolution parameters: N H W Cin Cout KH KW OH OW SH SW DH DW PT PL PB PR bias relu. */
export function convParams(info: Conv2DInfo, bias = false, relu = false): Int32Array {
  const p = info.padInfo;
  return Int32Array.from([
    info.batchSize, info.inHeight, info.inWidth, info.inChannels, info.outChannels,
    info.filterHeight, info.filterWidth, info.outHeight, info.outWidth,
    info.strideHeight, info.strideWidth, info.dilationHeight, info.dilationWidth,
    p.top, p.left, p.bottom, p.right, bias ? 1 : 0, relu ? 1 : 0,
  ]);
}

const size = (t: tf.TensorInfo) => tf.util.sizeFromShape(t.shape);

/** Conv2D and FusedConv2D (bias, ReLU or none) by oneDNN's forward convolution. */
export function onednnConv2d(addon: DnnlAddon, kernel: string, fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const a = args.attrs as unknown as ConvAttrs;
    const activation = a.activation ?? 'linear';
    if (!x || !filter) return fallback(args);
    if (a.dataFormat === 'NCHW') return decline(kernel, 'NCHW', fallback, args);
    if (preluActivationWeights || (activation !== 'linear' && activation !== 'relu')) {
      return decline(kernel, `activation ${activation}`, fallback, args);
    }
    const info = conv2dInfo(x.shape, filter.shape, a);
    if (bias && size(bias) !== info.outChannels) return decline(kernel, `bias of shape ${bias.shape}`, fallback, args);
    if (size(x) === 0 || tf.util.sizeFromShape(info.outShape) === 0) return fallback(args);
    const backend = args.backend as WasmBackend;
    const y = backend.makeOutput(info.outShape, 'float32');
    const params = convParams(info, !!bias, activation === 'relu');
    const tensors = bias ? [x, filter, y, bias] : [x, filter, y];
    return intoOutput(addon, kernel, backend, y, tensors, ([xv, fv, yv, bv]) => addon.conv2d(params, xv, fv, bv ?? null, yv), fallback, args);
  };
}

/** Conv2DBackpropInput: dx from dy and the filter, every stride and padding. */
export function onednnConv2dBackpropInput(addon: DnnlAddon, fallback: KernelFunc): KernelFunc {
  const kernel = tf.Conv2DBackpropInput;
  return (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
    if (a.dataFormat === 'NCHW') return decline(kernel, 'NCHW', fallback, args);
    if (size(dy) === 0 || tf.util.sizeFromShape(a.inputShape) === 0) return fallback(args);
    const info = conv2dInfo(a.inputShape, filter.shape, a);
    const backend = args.backend as WasmBackend;
    const dx = backend.makeOutput(a.inputShape, 'float32');
    return intoOutput(addon, kernel, backend, dx, [dy, filter, dx], ([d, f, o]) => addon.conv2dBackpropInput(convParams(info), d, f, o), fallback, args);
  };
}

/** Conv2DBackpropFilter: dW from x and dy. */
export function onednnConv2dBackpropFilter(addon: DnnlAddon, fallback: KernelFunc): KernelFunc {
  const kernel = tf.Conv2DBackpropFilter;
  return (args) => {
    const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
    if (a.dataFormat === 'NCHW') return decline(kernel, 'NCHW', fallback, args);
    if (size(x) === 0 || size(dy) === 0) return fallback(args);
    const info = conv2dInfo(x.shape, a.filterShape, a);
    const backend = args.backend as WasmBackend;
    const dw = backend.makeOutput(a.filterShape, 'float32');
    return intoOutput(addon, kernel, backend, dw, [x, dy, dw], ([xv, d, o]) => addon.conv2dBackpropFilter(convParams(info), xv, d, o), fallback, args);
  };
}
