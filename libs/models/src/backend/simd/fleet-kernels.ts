import { tf } from '../tf';
import { WASM_BASE64 } from './fleet-kernels.wasm';

/** Exports of fleet-kernels.wat; every pointer is a byte offset into the backend's heap. */
export interface FleetKernels {
  conv2d_filter_grad_4x8(...args: number[]): void;
  bn_stats(x: number, rows: number, c: number, acc: number): void;
  bn_grad_sums(dy: number, x: number, rows: number, c: number, mean: number, acc: number): void;
  channel_affine(a: number, b: number, out: number, rows: number, c: number, s: number, k: number, m: number, e: number): void;
  relu_grad(dy: number, x: number, dx: number, n4: number): void;
  max_pool_grad(...args: number[]): void;
}

// The compiler options have no DOM or WebAssembly lib: the few WebAssembly APIs used here.
type Memory = { readonly buffer: ArrayBuffer };
interface WasmApi {
  Memory: new (d: { initial: number }) => Memory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: object };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface EmscriptenBackend {
  wasm: { asm?: { memory?: Memory }; wasmMemory?: Memory };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
}

const compiled = new Map<string, object>();
const instances = new WeakMap<Memory, Map<string, object>>();

/**
 * The SIMD kernels instantiated on the wasm backend's own WebAssembly.Memory, so they read
 * and write tensors in place. Null when the backend's memory isn't reachable (another
 * tfjs-backend-wasm build): callers then keep the XNNPACK path.
 */
export function fleetKernels(backend: unknown): FleetKernels | null {
  return instantiateOnHeap<FleetKernels>(backend, WASM_BASE64);
}

/** Instantiates a module (base64 bytes importing env.memory) on the backend's heap, once per memory. */
export function instantiateOnHeap<T>(backend: unknown, base64: string): T | null {
  const b = backend as EmscriptenBackend;
  const memory = b.wasm?.asm?.memory ?? b.wasm?.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  let perMemory = instances.get(memory);
  if (!perMemory) instances.set(memory, (perMemory = new Map()));
  let exports = perMemory.get(base64);
  if (!exports) {
    let module = compiled.get(base64);
    if (!module) compiled.set(base64, (module = new WebAssembly.Module(Buffer.from(base64, 'base64'))));
    exports = new WebAssembly.Instance(module, { env: { memory } }).exports;
    perMemory.set(base64, exports);
  }
  return exports as T;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function heapOffset(backend: unknown, t: tf.TensorInfo): number {
  const data = (backend as EmscriptenBackend).dataIdMap.get(t.dataId);
  if (!data) throw new Error('tensor is not on the wasm backend (disposed, or created on another backend)');
  return data.memoryOffset;
}
