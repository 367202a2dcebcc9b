import { createHash } from 'node:crypto';
import type { Communicator } from '@tensorfleet/collective';
import { tensorsToBytes, tf, type NamedArray } from '@tensorfleet/models';
import type { EvalResult, TrainBatch, TrainerState } from '../trainer/trainer';
import type { PartOptimizer } from '../trainer/part-optimizer';
import type { ParallelPlan, RankPlace } from './plan';

/** The communicators of one rank of a plan (see ParallelPlan). */
export interface PlanComms {
  /** Every rank of the run; null when the run has one rank. */
  world: Communicator | null;
  /** The replicas of this rank's stage (their gradients are averaged); null without data parallelism. */
  replicas: Communicator | null;
  /** The stages (or columns) of this rank's replica, in stage order; null for plain data parallelism. */
  stages: Communicator | null;
}

/** Groups of a world communicator for `plan` (sub-communicators: no messages to create them). */
export function planComms(world: Communicator | null, plan: ParallelPlan, rank: number): PlanComms {
  if (!world) return { world: null, replicas: null, stages: null };
  const { replica, stage } = plan.place(rank);
  if (plan.stages === 1) return { world, replicas: world, stages: null };
  return {
    world,
    replicas: plan.replicas > 1 ? world.subgroup(plan.replicaGroup(stage), `replicas-of-stage-${stage}`) : null,
    stages: world.subgroup(plan.stageGroup(replica), `stages-of-replica-${replica}`),
  };
}

/** One step as one rank saw it. */
export interface PlanStepResult {
  /** Mean loss and top-1 over its replica's batch, on the rank that reports them (reportsLoss); else 0. */
  loss: number;
  accuracy: number;
  /** Samples the loss is over: the replica's batch on a reporting rank, else 0. */
  samples: number;
  lr: number;
  step: number;
  timings: StepTimings;
}

export interface StepTimings {
  /** Forward and backward compute. */
  computeMs: number;
  /** Waiting for activations or gradients from neighbouring stages (the bubble, and transfers). */
  waitMs: number;
  /** The gradient all-reduce among the replicas. */
  allReduceMs: number;
  updateMs: number;
  /** Bytes this rank sent to other stages or columns (activations and their gradients). */
  sentBytes: number;
  /** Largest number of micro-batches whose activations this rank held at once. */
  inFlight: number;
}

/**
 * One rank's share of a training step under any plan: the run loop (training-run.ts) drives
 * every plan through this, so resume, checkpoints, evaluation and the stop vote are the same
 * for data parallelism, pipelines and AlexNet's columns.
 */
export interface PlanTrainer {
  readonly plan: ParallelPlan;
  readonly place: RankPlace;
  readonly stepsDone: number;
  readonly lr: number;
  /** This rank's weights, optimizer and the BN statistics it holds. */
  readonly part: PartOptimizer;
  /**
   * One optimizer step. Ranks that read data (plan.readsData) pass their replica's batch,
   * the others null. Every rank of the run calls it once per step.
   */
  step(batch: TrainBatch | null): Promise<PlanStepResult>;
  /** Held-out loss, top-1 and top-5 over every replica's batches; every rank calls it (data readers pass batches). */
  evaluate(batches: AsyncIterable<TrainBatch> | Iterable<TrainBatch> | null): Promise<EvalResult>;
  /** Replica 0's state to the other replicas of each part (a fresh start). */
  broadcastInitialState(): Promise<void>;
  state(): TrainerState;
  /** Resume: weights and velocity by name (a checkpoint's, written by any plan), and the step and schedule. */
  load(weights: Record<string, NamedArray>, optimizer: Record<string, NamedArray>, state: TrainerState): void;
  /** Whether this rank writes its weights into a checkpoint (one rank per weight: replica 0, and column 0 for fc8). */
  writesCheckpoint(): boolean;
  /** The weights and velocity buffers this rank writes (checkpoint order). */
  checkpointTensors(): { weights: Record<string, tf.Tensor>; optimizer: Record<string, tf.Tensor> };
  dispose(): void;
}

/** sha256 of a rank's weights (trainable and not): equal hashes = identical replicas of a part. */
export function hashPart(part: PartOptimizer): string {
  return createHash('sha256').update(tensorsToBytes(part.weightTensors())).digest('hex');
}

/** Tags of point-to-point messages between stages and columns: kind, exchange and micro-batch. */
export const enum MsgKind {
  Activation = 1,
  Gradient = 2,
  Labels = 3,
  EvalActivation = 4,
  EvalLabels = 5,
}

export function tagOf(kind: MsgKind, mb: number, exchange = 0): number {
  if (mb >= 1 << 16) throw new RangeError(`micro-batch ${mb} does not fit a tag (at most 65535)`);
  return ((kind << 24) | (exchange << 16) | mb) >>> 0;
}

/** The bytes of a typed array, without a copy (what Communicator.send takes). */
export function bytesOf(a: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Float32 view of a received frame (copied only when misaligned). */
export function floats(bytes: Uint8Array): Float32Array {
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

export function ints(bytes: Uint8Array): Int32Array {
  if (bytes.byteOffset % 4 !== 0) bytes = bytes.slice();
  return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
