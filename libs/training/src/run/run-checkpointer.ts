import { randomBytes } from 'node:crypto';
import type { Communicator } from '@tensorfleet/collective';
import type { S3Config } from '@tensorfleet/data';
import {
  commitCheckpoint, pruneCheckpoints, writeCheckpointPart, type CheckpointPart, type CheckpointPartKind, type CheckpointState, type CheckpointStore,
} from '../checkpoint/checkpoint';
import { writeCheckpointPartsInThread } from '../checkpoint/part-upload';
import { TrainingError } from '../errors';

/** One rank's share of a checkpoint, already copied to host memory. */
export interface SnapshotPart {
  /** `weights` or `optimizer`; the object name gets the rank and an attempt tag. */
  kind: Exclude<CheckpointPartKind, 'state'>;
  body: Uint8Array;
  tensors?: string[];
}

export interface RunCheckpointerOptions {
  store: CheckpointStore;
  bucket: string;
  jobId: string;
  rank: number;
  world: Communicator | null;
  /** Upload while training goes on (true) or wait for it at the step (false). */
  background: boolean;
  /**
   * 'thread' (with a store that has its S3 config, as ObjectStore does): a worker thread
   * puts and hashes the parts, so the upload goes on while a step keeps this thread busy.
   * 'inline': this thread's store does, in the gaps between and inside steps.
   */
  uploads: 'thread' | 'inline';
  keep: number;
  log(msg: string): void;
  /** Rank 0, once a checkpoint is committed. */
  committed(key: string, step: number): Promise<void>;
}

interface Attempt {
  step: number;
  tag: string;
  /** Rank 0's state.json (null elsewhere). */
  state: CheckpointState | null;
  upload: Promise<CheckpointPart[]>;
  parts: CheckpointPart[] | null;
  error: unknown;
  startedAt: number;
}

/**
 * The run's checkpoints: a snapshot at the step boundary, uploaded in the background, and
 * committed (state.json, then manifest.json) by rank 0 only after every rank's parts are
 * up. Ranks learn that through two numbers they add to the step's all-reduce, [uploading,
 * failed]: every rank sees the same sums, so all of them settle the same attempt at the same
 * step without a collective of their own. At most one attempt is in flight: a checkpoint due
 * while the previous one uploads waits for it (logged), so checkpoint steps stay those the
 * spec names. Part names carry a random tag, so an attempt killed half-way never overwrites
 * or passes for the committed checkpoint of the same step (a run that went back re-saves it).
 */
export class RunCheckpointer {
  private attempt: Attempt | null = null;
  private commits: Promise<void> = Promise.resolve();
  /** Rank 0: the folder key of the newest committed checkpoint. */
  lastKey: string | undefined;

  constructor(private readonly o: RunCheckpointerOptions) {}

  /**
   * [uploading, failed] of this rank, for the step's all-reduce. While an upload is in flight
   * it first lets the event loop run once: the upload thread's reply is a message event, which
   * a loop that only awaits promises (one rank, batches already loaded) would never see.
   */
  async flags(): Promise<[number, number]> {
    const a = this.attempt;
    if (!a) return [0, 0];
    if (!a.parts && a.error === undefined) await new Promise((r) => setImmediate(r));
    return a.error !== undefined ? [0, 1] : a.parts ? [0, 0] : [1, 0];
  }

  /**
   * Starts checkpoint `step` from parts copied at this step (`state` on rank 0); in the
   * background by default, else waits for its commit. Call at the same step on every rank.
   */
  async save(step: number, state: CheckpointState | null, parts: SnapshotPart[]): Promise<void> {
    if (this.attempt) {
      const t0 = performance.now();
      const previous = this.attempt.step;
      await this.drain({ strict: false });
      this.o.log(`job ${this.o.jobId}: checkpoint ${step} is due while checkpoint ${previous} still uploads: waited ${((performance.now() - t0) / 1000).toFixed(1)} s for it (one upload at a time; checkpoint less often to avoid the wait)`);
    }
    const tag = randomBytes(4).toString('hex');
    const named = parts.map((p) => ({ file: `${p.kind}-r${this.o.rank}-${tag}.bin`, kind: p.kind, body: p.body, ...(p.tensors ? { tensors: p.tensors } : {}) }));
    const cfg = (this.o.store as { cfg?: S3Config }).cfg;
    const upload = this.o.uploads === 'thread' && cfg && named.length
      ? writeCheckpointPartsInThread(cfg, this.o.bucket, this.o.jobId, step, named)
      : Promise.all(named.map((p) => writeCheckpointPart(this.o.store, this.o.bucket, this.o.jobId, step, p)));
    const a: Attempt = { step, tag, state, upload, parts: null, error: undefined, startedAt: performance.now() };
    upload.then((written) => void (a.parts = written), (err: unknown) => void (a.error = err ?? new Error('upload failed')));
    this.attempt = a;
    if (!this.o.background) await this.drain({ strict: true });
  }

  /**
   * After the step's all-reduce, with the summed flags: commits the attempt once no rank is
   * still uploading, or drops it (logged; the next checkpoint tries again) when one failed.
   */
  async settle(uploading: number, failed: number): Promise<void> {
    const a = this.attempt;
    if (!a || (uploading > 0 && failed === 0)) return;
    this.attempt = null;
    if (failed > 0) {
      this.dropped(a, failed);
      return;
    }
    const all = await this.gather(a.parts!);
    if (this.o.rank === 0) {
      // Rank 0's commit runs behind training too; the next commit and drain() wait for it.
      this.commits = this.commits.then(() => this.commit(a, all)).catch((err: unknown) => {
        this.o.log(`job ${this.o.jobId}: checkpoint ${a.step} could not be committed: ${String((err as Error)?.message ?? err)}; the previous one stays the latest`);
      });
    }
  }

  /**
   * Waits for the attempt in flight and commits it (pause, end of run, or before the next
   * one). `strict`: a failed upload throws (a pause must leave a checkpoint behind) instead
   * of being logged and dropped. Every rank calls it at the same point.
   */
  async drain({ strict }: { strict: boolean }): Promise<void> {
    const a = this.attempt;
    if (a) {
      await a.upload.catch(() => undefined);
      this.attempt = null;
      const mine = Float32Array.of(a.error !== undefined ? 1 : 0);
      const failed = this.o.world ? (await this.o.world.allReduce(mine, { op: 'sum' }))[0] : mine[0];
      if (failed > 0) {
        if (strict) {
          const why = a.error !== undefined ? `: ${String((a.error as Error)?.message ?? a.error)}` : ` on ${failed} other rank${failed === 1 ? '' : 's'}`;
          throw new TrainingError('CHECKPOINT_FAILED', `checkpoint ${a.step} of job ${this.o.jobId} could not be uploaded${why}`);
        }
        this.dropped(a, failed);
      } else {
        const all = await this.gather(a.parts!);
        if (this.o.rank === 0) this.commits = this.commits.then(() => this.commit(a, all));
      }
    }
    if (this.o.rank === 0) {
      const commits = this.commits;
      this.commits = Promise.resolve();
      await commits;
    }
    if (a && this.o.world) await this.o.world.barrier();
  }

  private async gather(parts: CheckpointPart[]): Promise<CheckpointPart[]> {
    return this.o.world ? ((await this.o.world.allGather(parts)) as CheckpointPart[][]).flat() : parts;
  }

  private async commit(a: Attempt, parts: CheckpointPart[]): Promise<void> {
    const key = await commitCheckpoint(this.o.store, this.o.bucket, this.o.jobId, a.step, parts, a.state!, `state-${a.tag}.json`);
    this.lastKey = key;
    const mb = parts.reduce((s, p) => s + p.bytes, 0) / 1e6;
    if (this.o.background) this.o.log(`job ${this.o.jobId}: checkpoint ${a.step} committed (${mb.toFixed(1)} MB, ${((performance.now() - a.startedAt) / 1000).toFixed(1)} s after its snapshot)`);
    await pruneCheckpoints(this.o.store, this.o.bucket, this.o.jobId, this.o.keep);
    await this.o.committed(key, a.step);
  }

  private dropped(a: Attempt, failed: number): void {
    const why = a.error !== undefined ? String((a.error as Error)?.message ?? a.error) : `the upload failed on ${failed} other rank${failed === 1 ? '' : 's'}`;
    this.o.log(`job ${this.o.jobId}: checkpoint ${a.step} dropped, not committed (${why}); the previous one stays the latest and the next one tries again`);
  }
}
