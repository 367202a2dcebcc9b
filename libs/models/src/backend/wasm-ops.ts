import { tf } from './tf';

type TensorInfo = tf.TensorInfo;
type Backend = tf.KernelBackend & { disposeData(dataId: object, force?: boolean): boolean };

/**
 * Composes a kernel out of the wasm backend's own kernels (XNNPACK convolution, transpose,
 * slice, pad). Kernels can't call tf ops, so intermediates are TensorInfos freed explicitly.
 */
export class WasmOps {
  private readonly temps: TensorInfo[] = [];

  constructor(readonly backend: Backend) {}

  run(kernelName: string, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown> = {}): TensorInfo {
    const kernel = tf.getKernel(kernelName, 'wasm');
    if (!kernel) throw new Error(`wasm backend has no ${kernelName} kernel; is @tensorflow/tfjs-backend-wasm 4.x loaded?`);
    const out = kernel.kernelFunc({ inputs, attrs: attrs as tf.NamedAttrMap, backend: this.backend }) as TensorInfo;
    this.temps.push(out);
    return out;
  }

  /** Takes ownership of a TensorInfo produced outside run(): freed by dispose(). */
  adopt(t: TensorInfo): TensorInfo {
    this.temps.push(t);
    return t;
  }

  /** A new float32 tensor on the heap (contents undefined), owned like run()'s results. */
  alloc(shape: number[]): TensorInfo {
    const b = this.backend as unknown as { makeOutput(shape: number[], dtype: string): TensorInfo };
    return this.adopt(b.makeOutput(shape, 'float32'));
  }

  /** Marks a result as the kernel's output: it survives dispose(). */
  keep(t: TensorInfo): TensorInfo {
    const i = this.temps.indexOf(t);
    if (i >= 0) this.temps.splice(i, 1);
    return t;
  }

  dispose(): void {
    for (const t of this.temps) this.backend.disposeData(t.dataId);
    this.temps.length = 0;
  }

  /** Float32Array views of the heap, taken after all allocations (growth detaches old views). */
  withHeap<T>(tensors: TensorInfo[], body: (views: Float32Array[]) => T): T {
    const b = this.backend as unknown as { typedArrayFromHeap(t: TensorInfo): Float32Array };
    return body(tensors.map((t) => b.typedArrayFromHeap(t)));
  }

  transpose(x: TensorInfo, perm: number[]): TensorInfo {
    return this.run('Transpose', { x }, { perm });
  }

  reshape(x: TensorInfo, shape: number[]): TensorInfo {
    return this.run('Reshape', { x }, { shape });
  }

  reverse(x: TensorInfo, dims: number[]): TensorInfo {
    return this.run('Reverse', { x }, { dims });
  }

  slice(x: TensorInfo, begin: number[], size: number[]): TensorInfo {
    return this.run('Slice', { x }, { begin, size });
  }

  pad(x: TensorInfo, paddings: [number, number][]): TensorInfo {
    return this.run('PadV2', { x }, { paddings, constantValue: 0 });
  }

  /** An NHWC tensor with its channels zero-padded up to a multiple of `multiple` (itself when they are). */
  padChannels(x: TensorInfo, multiple: number): TensorInfo {
    const c = x.shape[3];
    const padded = Math.ceil(c / multiple) * multiple;
    return padded === c ? x : this.pad(x, [[0, 0], [0, 0], [0, 0], [0, padded - c]]);
  }

  /** NHWC convolution with explicit non-negative paddings [top, bottom], [left, right]. */
  conv2d(
    x: TensorInfo,
    filter: TensorInfo,
    strides: [number, number],
    dilations: [number, number],
    padH: [number, number],
    padW: [number, number],
  ): TensorInfo {
    const pad = [[0, 0], padH, padW, [0, 0]];
    return this.run('Conv2D', { x, filter }, { strides, dilations, pad, dataFormat: 'NHWC', dimRoundingMode: undefined });
  }

  /**
   * Crops axes 1 and 2 of an NHWC tensor so that, after padding [before, after] (negative
   * values crop), each has the wanted length; returns the cropped tensor and the remaining
   * non-negative pads.
   */
  cropForPads(
    x: TensorInfo,
    padH: [number, number],
    padW: [number, number],
  ): { x: TensorInfo; padH: [number, number]; padW: [number, number] } {
    const cropTop = Math.max(0, -padH[0]);
    const cropBottom = Math.max(0, -padH[1]);
    const cropLeft = Math.max(0, -padW[0]);
    const cropRight = Math.max(0, -padW[1]);
    let out = x;
    if (cropTop + cropBottom + cropLeft + cropRight > 0) {
      const [n, h, w, c] = x.shape;
      out = this.slice(x, [0, cropTop, cropLeft, 0], [n, h - cropTop - cropBottom, w - cropLeft - cropRight, c]);
    }
    return {
      x: out,
      padH: [Math.max(0, padH[0]), Math.max(0, padH[1])],
      padW: [Math.max(0, padW[0]), Math.max(0, padW[1])],
    };
  }
}

/** Runs a kernel body with a WasmOps whose intermediates are freed afterwards; the result is kept. */
export function withOps(backend: unknown, body: (ops: WasmOps) => TensorInfo): TensorInfo {
  const ops = new WasmOps(backend as Backend);
  try {
    return ops.keep(body(ops));
  } finally {
    ops.dispose();
  }
}
