import { tf } from './tf';

/** The parts of tfjs-backend-wasm's BackendWasm the JavaScript kernels use. */
export interface WasmBackend extends tf.KernelBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  incRef(dataId: object): void;
}

/**
 * Runs body on Float32Array views of the wasm heap. Views are taken after every output is
 * allocated because an allocation may grow (and detach) the heap.
 */
export function withHeap<T>(backend: WasmBackend, tensors: tf.TensorInfo[], body: (views: Float32Array[]) => T): T {
  return body(tensors.map((t) => backend.typedArrayFromHeap(t)));
}

/** Number of leading axes reduced when `axes` is exactly [0, 1, …, k-1]; 0 otherwise. */
export function leadingAxes(axes: number[], rank: number): number {
  const sorted = [...axes].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i++) if (sorted[i] !== i) return 0;
  return sorted.length < rank ? sorted.length : 0;
}

/** tfjs backends that are the wasm backend's instance (`onednn` is wasm with oneDNN kernels). */
export const WASM_HEAP_BACKENDS: readonly string[] = ['wasm', 'onednn'];

/** Whether the active backend keeps tensors on the wasm heap, where this project's kernels run. */
export function onWasmHeap(): boolean {
  return WASM_HEAP_BACKENDS.includes(tf.getBackend());
}

/**
 * A writable view of `t`'s values on the wasm heap when nothing else holds them (the backend's
 * reference count is 1: no reshape, clone or second tensor shares the buffer), else null. What an
 * in-place update may write through; the view is valid until the next allocation.
 */
export function soleHeapView(t: tf.Tensor): Float32Array | null {
  if (t.dtype !== 'float32' || !onWasmHeap()) return null;
  const b = tf.backend() as WasmBackend & { refCount(dataId: object): number };
  return b.refCount(t.dataId) === 1 ? b.typedArrayFromHeap(t) : null;
}

/**
 * Adds `t`'s values into `into` (copies them when `overwrite`), in index order: what
 * `into[i] += (await t.data())[i]` does, bitwise. On the wasm-heap backends it reads a view
 * of the heap instead of `data()`'s copy, so accumulating a gradient allocates nothing: no
 * ArrayBuffer per micro-batch (for AlexNet's fc6 108 MB each), no page faults, and no
 * external memory for V8 to answer with a mark-compact that, in a pipeline, stalls the
 * neighbouring stage too. The view is used before any other allocation could grow the heap.
 */
export function accumulateInto(into: Float32Array, t: tf.Tensor, overwrite: boolean): void {
  if (t.dtype !== 'float32' || t.size !== into.length) throw new RangeError(`accumulateInto: a float32 tensor of ${into.length} values, got ${t.dtype} of ${t.size}`);
  const values = onWasmHeap() ? (tf.backend() as WasmBackend).typedArrayFromHeap(t) : (t.dataSync() as Float32Array);
  if (overwrite) into.set(values);
  else for (let i = 0; i < into.length; i++) into[i] += values[i];
}
