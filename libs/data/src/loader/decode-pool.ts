import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { cpus } from 'node:os';
// Loaded in the main thread before any worker so the native module registers once per process.
import 'sharp';
import { AugmentConfig, cropsPerImage, decodeAugment } from './augment';

/** Decode threads keep dying (not a bad image): the epoch cannot go on. */
export class DecodeWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeWorkerError';
  }
}

export type WorkerRequest = { type: 'decode'; id: number; bytes: Uint8Array; seed: number; frame: number } | { type: 'cpu'; id: number };
export type WorkerReply = { id: number; error?: string; cpuSeconds?: number };

/**
 * Every decode thread the machine has left after the loader's own thread. The measured split
 * (docs/benchmarks.md) is ~85–90 % of the CPU in decode threads and libvips, ~10–15 % on the loader
 * thread, so on 2 cores a second decode thread only pays when the trainer is not using that core.
 */
export function defaultDecodeThreads(): number {
  return Math.max(1, cpus().length - 1);
}

/** A sample in flight; kept until its thread answers so it can be re-sent if the thread dies. */
interface Job {
  bytes: Uint8Array;
  seed: number;
  frame: number;
  /** Threads that died while holding this job. */
  deaths: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Job>;
}

/**
 * decode + augment in worker_threads (or in this thread with threads = 0) into numbered frames of
 * one SharedArrayBuffer: no per-image buffers to allocate, transfer and collect.
 *
 * A thread that dies (crash, out of memory, terminated) is replaced and its samples are sent to the
 * new one, so no sample is lost. A sample that was in flight on two threads that died is rejected as
 * undecodable (the loader skips and counts it); more than `maxRestarts` deaths fail every pending
 * and later sample with DecodeWorkerError.
 */
export class DecodePool {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closed = false;
  private broken: DecodeWorkerError | null = null;
  private readonly cpuQueries = new Map<number, (s: number) => void>();
  readonly frameSize: number;
  readonly frames: Float32Array;
  /** Threads replaced after dying. */
  restarts = 0;
  readonly maxRestarts: number;

  constructor(readonly threads: number, private readonly cfg: AugmentConfig, frameCount: number) {
    this.frameSize = cropsPerImage(cfg.pipeline) * cfg.inputSize * cfg.inputSize * 3;
    this.frames = new Float32Array(new SharedArrayBuffer(frameCount * this.frameSize * 4));
    this.maxRestarts = 2 * threads + 2;
    for (let i = 0; i < threads; i++) {
      const slot: Slot = { worker: null as unknown as Worker, pending: new Map() };
      this.slots.push(slot);
      this.start(slot);
    }
  }

  private start(slot: Slot): void {
    const worker = new Worker(join(__dirname, 'decode-worker.js'), { workerData: { cfg: this.cfg, frames: this.frames.buffer } });
    slot.worker = worker;
    worker.on('message', (m: WorkerReply) => {
      const q = this.cpuQueries.get(m.id);
      if (q) {
        this.cpuQueries.delete(m.id);
        q(m.cpuSeconds ?? 0);
        return;
      }
      const job = slot.pending.get(m.id);
      if (!job) return;
      slot.pending.delete(m.id);
      if (slot.pending.size === 0) worker.unref();
      if (m.error === undefined) job.resolve();
      else job.reject(new Error(m.error));
    });
    let gone = false;
    const died = (cause: string) => {
      if (gone || this.closed || slot.worker !== worker) return;
      gone = true;
      void worker.terminate();
      this.replace(slot, cause);
    };
    worker.on('error', (err) => died(err.message));
    worker.on('exit', (code) => died(`exited with code ${code}`));
    // Ref'd only while it has work (see send()): an abandoned iterator must not keep the process
    // alive, and a pending decode must. After the listeners, since adding one refs the port again.
    worker.unref();
  }

  private replace(slot: Slot, cause: string): void {
    const jobs = [...slot.pending.values()];
    slot.pending.clear();
    this.restarts++;
    if (this.restarts > this.maxRestarts) {
      this.broken = new DecodeWorkerError(
        `decode worker threads died ${this.restarts} times (last: ${cause}); decoding cannot go on. ` +
          'Run the loader with decodeThreads: 0 to decode on the main thread and see the failure directly.',
      );
      for (const j of jobs) j.reject(this.broken);
      return;
    }
    this.start(slot);
    for (const j of jobs) {
      j.deaths++;
      // A sample that was on two threads that died is the likely cause: skip it rather than kill a third.
      if (j.deaths >= 2) j.reject(new Error(`decode thread died twice while decoding this sample (${cause})`));
      else this.send(slot, j);
    }
  }

  private send(slot: Slot, job: Job): void {
    const id = this.nextId++;
    if (slot.pending.size === 0) slot.worker.ref();
    slot.pending.set(id, job);
    // Copy: the tar chunk the bytes point into is shared with other samples, and a re-send needs them.
    const copy = new Uint8Array(job.bytes);
    slot.worker.postMessage({ type: 'decode', id, bytes: copy, seed: job.seed, frame: job.frame } satisfies WorkerRequest, [copy.buffer]);
  }

  /** The frame's view; valid once run() for it has resolved and until the frame is reused. */
  frame(i: number): Float32Array {
    return this.frames.subarray(i * this.frameSize, (i + 1) * this.frameSize);
  }

  /** Decodes into frame `frame`. */
  async run(bytes: Uint8Array, seed: number, frame: number): Promise<void> {
    if (this.closed) throw new Error('DecodePool is closed');
    if (this.broken) throw this.broken;
    if (this.slots.length === 0) {
      await decodeAugment(bytes, seed, this.cfg, this.frame(frame));
      return;
    }
    let slot = this.slots[0];
    for (const s of this.slots) if (s.pending.size < slot.pending.size) slot = s;
    return new Promise<void>((resolve, reject) => this.send(slot, { bytes, seed, frame, deaths: 0, resolve, reject }));
  }

  /** Fault injection (tests, chaos runs): ends decode thread `i` as a crash would. */
  async killThread(i: number): Promise<void> {
    await stop(this.slots[i].worker);
  }

  /** CPU seconds used so far by the live decode threads, libjpeg-turbo decoding included (libvips works on threads of its own; replaced threads are not counted). */
  async threadCpuSeconds(): Promise<number> {
    if (this.broken || this.closed) return 0;
    const live = await Promise.all(
      this.slots.map(
        (s) =>
          new Promise<number>((resolve) => {
            const id = this.nextId++;
            const timer = setTimeout(() => {
              this.cpuQueries.delete(id);
              resolve(0);
            }, 2000);
            this.cpuQueries.set(id, (sec) => {
              clearTimeout(timer);
              resolve(sec);
            });
            s.worker.postMessage({ type: 'cpu', id } satisfies WorkerRequest);
          }),
      ),
    );
    return live.reduce((a, b) => a + b, 0);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.slots.map((s) => stop(s.worker)));
  }
}

/**
 * Terminates a worker and waits for its exit. A worker being terminated does not keep the event
 * loop alive, even ref'd (Node 20): with nothing else pending (decoding is synchronous in the
 * threads, so no libuv work is in flight) the loop would end with the caller's await abandoned.
 * A timer holds it until the exit arrives.
 */
async function stop(worker: Worker): Promise<void> {
  const hold = setInterval(() => undefined, 60_000);
  try {
    await worker.terminate();
  } finally {
    clearInterval(hold);
  }
}
