import { WASM_BASE64 } from './resize.wasm';

/** Exports of resize.wat; every pointer is a byte offset into the kernel's own memory. */
interface ResizeExports {
  resize_vertical(src: number, srcStride: number, rowBytes: number, lo: number, taps: number, w: number, maxTaps: number, rows: number, dst: number, dstStride: number): void;
  resize_horizontal(src: number, srcStride: number, lo: number, taps: number, w: number, maxTaps: number, size: number, rows: number, flip: number, sc0: number, sc1: number, sc2: number, b0: number, b1: number, b2: number, dst: number): void;
}

// The compiler options have no DOM or WebAssembly lib: the few WebAssembly APIs used here.
interface Memory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Memory: new (d: { initial: number }) => Memory;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object, imports: object) => { exports: object };
}
const WebAssembly = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface ResizeKernel {
  exports: ResizeExports;
  /** The memory, grown to at least `bytes`; its buffer changes when it grows. */
  heap(bytes: number): ArrayBuffer;
  /** Its current size. */
  heapBytes(): number;
}

let kernel: ResizeKernel | null | undefined;

/** One instance per thread (module state is per worker_thread), or null where WebAssembly SIMD is missing. */
export function resizeKernel(): ResizeKernel | null {
  if (kernel !== undefined) return kernel;
  try {
    const memory = new WebAssembly.Memory({ initial: 64 });
    const module = new WebAssembly.Module(Buffer.from(WASM_BASE64, 'base64'));
    const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as ResizeExports;
    kernel = {
      exports,
      heap(bytes: number): ArrayBuffer {
        const have = memory.buffer.byteLength;
        if (bytes > have) memory.grow(Math.ceil((bytes - have) / 65536));
        return memory.buffer;
      },
      heapBytes: () => memory.buffer.byteLength,
    };
  } catch {
    kernel = null;
  }
  return kernel;
}
