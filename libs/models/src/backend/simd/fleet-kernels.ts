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

let compiled: object | null = null;
const instances = new WeakMap<Memory, FleetKernels>();

/**
 * The SIMD kernels instantiated on the wasm backend's own WebAssembly.Memory, so they read
 * and write tensors in place. Null when the backend's memory isn't reachable (another
 * tfjs-backend-wasm build): callers then keep the XNNPACK path.
 */
export function fleetKernels(backend: unknown): FleetKernels | null {
  const b = backend as EmscriptenBackend;
  const memory = b.wasm?.asm?.memory ?? b.wasm?.wasmMemory;
  if (!(memory instanceof WebAssembly.Memory)) return null;
  let kernels = instances.get(memory);
  if (!kernels) {
    compiled ??= new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
    kernels = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as FleetKernels;
    instances.set(memory, kernels);
  }
  return kernels;
}

/** Byte offset of a tensor's data in the wasm heap. */
export function heapOffset(backend: unknown, t: tf.TensorInfo): number {
  const data = (backend as EmscriptenBackend).dataIdMap.get(t.dataId);
  if (!data) throw new Error('tensor is not on the wasm backend (disposed, or created on another backend)');
  return data.memoryOffset;
}
