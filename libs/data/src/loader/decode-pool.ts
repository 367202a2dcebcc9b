import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { cpus } from 'node:os';
// Loaded in the main thread before any worker so the native module registers once per process.
import 'sharp';
import { AugmentConfig, decodeAugment } from './augment';

/** A decode thread died (not a bad image): the epoch cannot go on. */
export class DecodeWorkerError extends Error {
  constructor(cause: Error) {
    super(`a decode worker thread died: ${cause.message}`);
    this.name = 'DecodeWorkerError';
  }
}

export function defaultDecodeThreads(): number {
  return Math.max(1, cpus().length - 1);
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: () => void; reject: (e: Error) => void }>;
  dead: DecodeWorkerError | null;
}

/**
 * decode + augment in worker_threads (or in this thread with threads = 0) into numbered frames of
 * one SharedArrayBuffer: no per-image buffers to allocate, transfer and collect.
 */
export class DecodePool {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;
  readonly frameSize: number;
  readonly frames: Float32Array;

  constructor(readonly threads: number, private readonly cfg: AugmentConfig, frameCount: number) {
    this.frameSize = cfg.inputSize * cfg.inputSize * 3;
    const sab = new SharedArrayBuffer(frameCount * this.frameSize * 4);
    this.frames = new Float32Array(sab);
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(join(__dirname, 'decode-worker.js'), { workerData: { cfg, frames: sab } });
      const slot: Slot = { worker, pending: new Map(), dead: null };
      worker.on('message', (m: { id: number; error?: string }) => {
        const p = slot.pending.get(m.id);
        if (!p) return;
        slot.pending.delete(m.id);
        if (slot.pending.size === 0) worker.unref();
        if (m.error === undefined) p.resolve();
        else p.reject(new Error(m.error));
      });
      const fail = (err: Error) => {
        slot.dead = new DecodeWorkerError(err);
        for (const p of slot.pending.values()) p.reject(slot.dead);
        slot.pending.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => {
        if (!this.closed) fail(new Error(`exited with code ${code}`));
      });
      // Ref'd only while it has work (see run()): an abandoned iterator must not keep the process
      // alive, and a pending decode must. After the listeners, since adding one refs the port again.
      worker.unref();
      this.slots.push(slot);
    }
  }

  /** The frame's view; valid once run() for it has resolved and until the frame is reused. */
  frame(i: number): Float32Array {
    return this.frames.subarray(i * this.frameSize, (i + 1) * this.frameSize);
  }

  /** Decodes into frame `frame`. */
  async run(bytes: Uint8Array, seed: number, frame: number): Promise<void> {
    if (this.closed) throw new Error('DecodePool is closed');
    if (this.slots.length === 0) {
      await decodeAugment(bytes, seed, this.cfg, this.frame(frame));
      return;
    }
    let slot = this.slots[0];
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    if (slot.dead) throw slot.dead;
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      // Copy: the tar chunk the bytes point into is shared with other samples.
      const copy = new Uint8Array(bytes);
      slot.worker.postMessage({ id, bytes: copy, seed, frame }, [copy.buffer]);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
