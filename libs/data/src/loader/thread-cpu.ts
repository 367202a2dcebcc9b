import { readFileSync } from 'node:fs';

/**
 * CPU seconds the calling thread (main or worker_thread) has used, from Linux's
 * /proc/thread-self/schedstat (nanoseconds); null elsewhere. Node 20 has no per-thread
 * process.cpuUsage, and the loader's cost splits by thread: fetch and batching on the main
 * thread, the normalise loop on the decode threads, decoding and resizing on libvips' threads.
 */
export function threadCpuSeconds(): number | null {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1e9;
  } catch {
    return null;
  }
}
