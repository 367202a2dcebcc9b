import { join } from 'node:path';
import { tf } from './tf';

/**
 * The oneDNN addon (libs/models/native, built by `npm ci` when libdnnl-dev is installed). Its
 * functions take Float32Array views of the wasm heap and work in place; each returns false
 * when oneDNN has no primitive for the case, and the caller runs the wasm kernel instead.
 */
export interface DnnlAddon {
  /** params: convParams(); bias null when absent. */
  conv2d(params: Int32Array, x: Float32Array, filter: Float32Array, bias: Float32Array | null, y: Float32Array): boolean;
  conv2dBackpropInput(params: Int32Array, dy: Float32Array, filter: Float32Array, dx: Float32Array): boolean;
  conv2dBackpropFilter(params: Int32Array, x: Float32Array, dy: Float32Array, dw: Float32Array): boolean;
  /** Row-major c[m×n] = op(a)·op(b). */
  matmul(transA: boolean, transB: boolean, m: number, n: number, k: number, a: Float32Array, b: Float32Array, c: Float32Array): boolean;
  /**
   * shape: [N, C, H, W] of NHWC data ([rows, C, 1, 1] for other ranks). training: mean and
   * variance are written (this batch's, summed in float64), else read (frozen statistics).
   */
  batchNormForward(
    shape: Int32Array, eps: number, training: boolean, x: Float32Array, scale: Float32Array, shift: Float32Array,
    mean: Float32Array, variance: Float32Array, y: Float32Array,
  ): boolean;
  /** Training gradient given the batch statistics; dMean / dVariance (gradients reaching them) may be null. */
  batchNormBackward(
    shape: Int32Array, eps: number, x: Float32Array, dy: Float32Array, mean: Float32Array, variance: Float32Array,
    scale: Float32Array, dMean: Float32Array | null, dVariance: Float32Array | null, dx: Float32Array, dScale: Float32Array, dShift: Float32Array,
  ): boolean;
  /** params: poolParams() (N H W C OH OW KH KW SH SW PT PL PB PR max). */
  pool(params: Int32Array, x: Float32Array, y: Float32Array): boolean;
  /** x is read by max pooling only (null for average). */
  poolBackward(params: Int32Array, x: Float32Array | null, dy: Float32Array, dx: Float32Array): boolean;
  setThreads(n: number): void;
  threads(): number;
  version(): string;
  lastError(): string;
  /** The implementation oneDNN chose for a forward convolution ("jit:avx2", "brgconv:avx512_core", …). */
  convImpl(params: Int32Array): string;
  /**
   * 'auto' (default): NHWC activations in place where oneDNN has a direct kernel for them
   * (AVX-512), else its blocked layout with a reorder each way (AVX2). 'blocked': always blocked.
   */
  setLayout(mode: 'auto' | 'blocked'): void;
  /**
   * One SGD step in place (Sgd.applyArrays): w, v (null without momentum) and g of one weight;
   * weightDecay NaN for a weight that is not decayed. The same fp32 operations as Sgd.apply().
   */
  sgdStep(w: Float32Array, v: Float32Array | null, g: Float32Array, lr: number, momentum: number, weightDecay: number, nesterov: boolean): boolean;
  /** Bytes of the addon's own scratch (blocked copies, oneDNN scratchpads), outside the wasm heap. */
  scratchBytes(): number;
}

export const DNNL_ADDON_PATH = join(__dirname, '../../native/build/Release/fleet_dnnl.node');
export const DNNL_BUILD_HINT =
  'Build it with `npm run build:native` after installing a C++ compiler and oneDNN (Debian/Ubuntu: apt-get install build-essential libdnnl-dev).';

let loaded: { addon: DnnlAddon | null; error: string } | null = null;

/** The addon, or null with dnnlLoadError() saying why (not built, libdnnl missing). */
export function dnnlAddon(): DnnlAddon | null {
  if (!loaded) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      loaded = { addon: require(DNNL_ADDON_PATH) as DnnlAddon, error: '' };
    } catch (err) {
      loaded = { addon: null, error: String((err as Error).message).split('\n')[0] };
    }
  }
  return loaded.addon;
}

export function dnnlLoadError(): string {
  dnnlAddon();
  return loaded?.error ?? '';
}

/**
 * oneDNN's threads in this process: FLEET_DNNL_THREADS, default 1 (one worker process per core
 * is the data-parallel layout; more threads per worker would oversubscribe the cores).
 */
export function dnnlThreadsSetting(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FLEET_DNNL_THREADS;
  if (raw === undefined || raw === '') return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`FLEET_DNNL_THREADS=${raw}: expected a whole number of threads, at least 1`);
  return n;
}

/**
 * The addon's in-place SGD step when the `onednn` backend runs (its tensors on the wasm heap, the
 * addon loaded), else null: the trainers then update with tfjs ops.
 */
export function nativeSgdStep(): DnnlAddon['sgdStep'] | null {
  if (tf.getBackend() !== 'onednn') return null;
  const addon = dnnlAddon();
  return addon && typeof addon.sgdStep === 'function' ? addon.sgdStep.bind(addon) : null;
}
