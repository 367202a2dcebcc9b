import { createHash } from 'node:crypto';
import type { Communicator } from '@tensorfleet/collective';
import { globalBatchOf, type JobSpec } from '@tensorfleet/control';
import type { LoaderCursor } from '@tensorfleet/data';
import type { ParallelPlan } from '../parallel/plan';
import type { DataParallelTrainer } from '../parallel/data-parallel-trainer';
import type { PlanTrainer } from '../parallel/plan-trainer';
import type { TrainerState } from '../trainer/trainer';

/**
 * Where the data stood after a held step, as a checkpoint's state.json has it: every replica's
 * cursor (rank order) or the global position (elastic runs).
 */
export interface HeldPosition {
  epoch: number;
  cursors?: LoaderCursor[];
  data?: { order: 'global'; epoch: number; samplesConsumed: number; globalBatch: number };
}

/** What a survivor of a stopped run keeps: enough to go on at the last step every replica completed. */
export interface HeldState {
  jobId: string;
  /** The run it comes from. */
  runId: string;
  step: number;
  /** Digest of the spec fields the state depends on: a job whose spec changed does not take it. */
  specKey: string;
  /** Weights (trainable and not, BN statistics too) and velocity: PartOptimizer.packState's bytes. */
  bytes: Uint8Array;
  trainer: TrainerState;
  position: HeldPosition;
}

/** What a rank tells the others about the state it holds (the all-gather of a memory resume). */
export interface HeldSummary {
  step: number;
  runId: string;
  position: HeldPosition;
}

/**
 * A worker process's memory of its last run that stopped (lost peer, or a cancel): one state at
 * a time, for whichever job. The process outlives its runs, so the state survives into the next
 * assignment, which either takes it (a memory resume) or drops it.
 */
export class SurvivorMemory {
  private held: HeldState | null = null;

  hold(state: HeldState): void {
    this.held = state;
  }

  /** The state held for `jobId` if its spec fits, else null. */
  get(jobId: string, spec: JobSpec): HeldState | null {
    const h = this.held;
    return h && h.jobId === jobId && h.specKey === specKey(spec) ? h : null;
  }

  /** The step held for `jobId` (what the worker reports with its stop event), or undefined. */
  heldStep(jobId: string): number | undefined {
    return this.held?.jobId === jobId ? this.held.step : undefined;
  }

  /** A run started: what it did not take is stale from now on (its own state moves on). */
  clear(): void {
    this.held = null;
  }
}

/** The spec fields a held state depends on (model, optimizer, schedule, data and its global order). */
export function specKey(spec: JobSpec): string {
  const { model, dataset, optimizer, lrSchedule, seed, augmentation, freezeBatchNorm, microBatchSize } = spec as JobSpec & Record<string, unknown>;
  return createHash('sha256').update(JSON.stringify({ model, dataset, optimizer, lrSchedule, seed, augmentation, freezeBatchNorm, microBatchSize, globalBatch: globalBatchOf(spec) })).digest('hex').slice(0, 16);
}

/** Positions above this do not survive float32 in the stop vote exactly. */
const EXACT_FLOAT = 2 ** 24;

/**
 * The run loop's record of its last completed step, for a survivor to hold. Weights and
 * velocity are not copied per step: after a failure the trainer's own tensors are that state
 * (the SGD update runs only after the gradient all-reduce has completed, so a step that failed
 * left them untouched) and are packed once, when the run stops. Per step it keeps only the data
 * position: rank-order runs add one number per replica to the stop vote (the replica's loader
 * position), so every rank knows every replica's cursor; elastic runs' global position is the
 * same on every rank.
 *
 * Plain data parallelism only: in a pipeline or AlexNet's columns a survivor holds one part of
 * the model, and the lost rank's part is gone, so those runs resume from their checkpoint.
 */
export class StepCommit {
  private last: { step: number; position: HeldPosition | null } = { step: -1, position: null };
  /** The cursor of the batch whose step is under way (its update may be applied before its stop vote). */
  private pending: LoaderCursor | null = null;
  private readonly global: boolean;
  readonly enabled: boolean;

  constructor(private readonly plan: ParallelPlan, private readonly spec: JobSpec, elastic: boolean) {
    this.global = elastic;
    this.enabled = plan.kind === 'data' && plan.stages === 1;
  }

  /** Stop-vote slots: this replica's loader position + 1 in its slot (0 elsewhere); none when the run cannot hold state or needs none. */
  voteSlots(rank: number): number[] {
    if (!this.enabled || this.global) return [];
    const slots = new Array<number>(this.plan.replicas).fill(0);
    if (this.pending) slots[rank] = this.pending.position + 1;
    return slots;
  }

  /** A step starts on the batch with this cursor. */
  begin(cursor: LoaderCursor | null): void {
    this.pending = cursor;
  }

  /** The resume point (or the start) of the run: held until its first step completes. */
  start(step: number, epoch: number, cursor: LoaderCursor | undefined, cursors?: LoaderCursor[]): void {
    const c = cursor ?? { epoch, position: 0 };
    this.last = { step, position: this.global ? this.globalPos(c) : cursors ? { epoch: c.epoch, cursors } : this.allAt(c) };
  }

  /** After the stop vote of `step`: the data position after it (`slots` = the summed vote slots). */
  completed(step: number, slots: Float32Array): void {
    const cursor = this.pending;
    this.pending = null;
    if (!this.enabled) return;
    if (!cursor) {
      this.last = { step, position: null };
      return;
    }
    if (this.global) {
      this.last = { step, position: this.globalPos(cursor) };
      return;
    }
    const exact = slots.length === this.plan.replicas && [...slots].every((s) => s >= 1 && s < EXACT_FLOAT);
    this.last = {
      step,
      position: exact ? { epoch: cursor.epoch, cursors: [...slots].map((s) => ({ epoch: cursor.epoch, position: s - 1, ...(cursor.batches !== undefined ? { batches: cursor.batches } : {}) })) } : null,
    };
  }

  /** The epoch's end-of-epoch work (checkpoint, evaluation) is done: the position is the next epoch's start. */
  epochStarted(epoch: number): void {
    if (this.enabled && this.last.position) this.last = { step: this.last.step, position: this.global ? this.globalPos({ epoch, position: 0 }) : this.allAt({ epoch, position: 0 }) };
  }

  /** The state to hold after the run stopped at a failure or a cancel, or why there is none. */
  capture(trainer: PlanTrainer, jobId: string, runId: string): { state: HeldState } | { why: string } {
    const pending = this.pending;
    if (!this.enabled) return { why: `a ${this.plan.kind} plan: each survivor holds only its part of the model` };
    let position = this.last.position;
    const done = trainer.stepsDone;
    if (done === this.last.step + 1 && this.global && pending) {
      // The update of the step under way was applied (its gradients were all-reduced), the stop vote was not: go on after it.
      position = this.globalPos(pending);
    } else if (done !== this.last.step) {
      return { why: `the weights are at step ${done} and the data positions at step ${this.last.step}` };
    }
    if (!position) return { why: `the data positions of step ${done} are not known on every replica` };
    if (!trainer.part.restoreStats()) return { why: 'batch-norm statistics of an unfinished step cannot be undone' };
    return {
      state: {
        jobId, runId, step: done, specKey: specKey(this.spec),
        bytes: trainer.part.packState({ step: done }),
        trainer: trainer.state(),
        position,
      },
    };
  }

  private globalPos(c: LoaderCursor): HeldPosition {
    return { epoch: c.epoch, data: { order: 'global', epoch: c.epoch, samplesConsumed: c.position, globalBatch: globalBatchOf(this.spec) } };
  }

  private allAt(c: LoaderCursor): HeldPosition {
    return { epoch: c.epoch, cursors: Array.from({ length: this.plan.replicas }, () => ({ ...c })) };
  }
}

/**
 * A memory resume: every rank says which step it holds (for this job, with this spec); the
 * newest one wins, if it is newer than `atLeast` (the checkpoint's step), and its holder
 * broadcasts its weights, velocity and schedule to every rank. Null when no rank holds a state
 * newer than that: the run loads its checkpoint instead. Every rank calls it.
 */
export async function resumeFromSurvivor(
  world: Communicator | null, trainer: PlanTrainer, held: HeldState | null, atLeast: number,
): Promise<{ root: number; summary: HeldSummary } | null> {
  const mine: HeldSummary | null = held ? { step: held.step, runId: held.runId, position: held.position } : null;
  const all = world ? ((await world.allGather(mine)) as (HeldSummary | null)[]) : [mine];
  let root = -1;
  all.forEach((s, r) => {
    if (s && s.step > atLeast && (root < 0 || s.step > all[root]!.step)) root = r;
  });
  if (root < 0) return null;
  // StepCommit holds state of plain data parallelism only: the trainer is a DataParallelTrainer.
  const dp = (trainer as DataParallelTrainer).trainer;
  if ((world?.rank ?? 0) === root) {
    trainer.part.unpackState(held!.bytes);
    dp.loadSchedule(held!.trainer);
  }
  await dp.broadcastInitialState(root);
  return { root, summary: all[root]! };
}
