/** Registers this project's kernels on the wasm backend (idempotent). */
export function registerWasmKernels(): void {
  // Filled in by the kernel commits.
}
