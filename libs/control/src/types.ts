import type { AssignmentCurve } from './curve-keys';
import type { JobSpec } from './job-spec';

/**
 * A worker's collective endpoint (CollectiveNode.address), opaque to the control plane.
 * Same shape as @tensorfleet/collective's PeerAddress, which control may not import.
 */
export interface PeerAddress {
  hostId: string;
  tcp: string;
  ipc: string | null;
  /** The node's CURVE server public key and which endpoints demand CURVE (tcp, or all). */
  curve?: { key: string; mode: 'tcp' | 'all' } | null;
}

export type WorkerState = 'idle' | 'busy';

/** How registerWorker writes the entry. */
export interface RegisterOptions {
  /** Registration time. Default now. */
  now?: number;
  /** TTL of the first heartbeat. Default the plane's heartbeatTtlMs. */
  ttlMs?: number;
  /**
   * A worker registering again in the middle of a run (the registry forgot it): it is written
   * busy with that job in the same transaction, so the scheduler never sees it idle and cannot
   * claim it for a second job. Default: idle.
   */
  busy?: { jobId: string; rank: number };
}

/** What a worker tells the registry about itself. */
export interface WorkerRegistration {
  id: string;
  host: string;
  pid: number;
  backend: string;
  device: string;
  address: PeerAddress;
}

export interface WorkerInfo extends WorkerRegistration {
  state: WorkerState;
  jobId: string | null;
  rank: number | null;
  registeredAt: number;
  lastSeen: number;
  /** The heartbeat key `worker:<id>:alive` exists (TTL not expired). */
  alive: boolean;
}

export interface Assignment {
  jobId: string;
  runId: string;
  membershipEpoch: number;
  rank: number;
  worldSize: number;
  /** Every rank's address, in rank order. */
  peers: PeerAddress[];
  /** Every rank's worker id, in rank order (errors and the layout name them). */
  workers?: string[];
  spec: JobSpec;
  resume?: CheckpointRef;
  /** This rank's CURVE keys for this epoch (memberCurveKeys), when a member's node demands CURVE. */
  curve?: AssignmentCurve;
  /**
   * An automatic restart whose survivors reported holding a newer step than the checkpoint:
   * the ranks resume from the newest state one of them holds in memory, else from `resume`.
   */
  memory?: MemoryRef;
  /** The job's pending POST /jobs/:id/pause `atStep`: the run pauses after that step. */
  pauseAtStep?: number;
}

/** A step a survivor of the last run said it holds in memory (its stop event's `heldStep`). */
export interface MemoryRef {
  step: number;
  /** The worker that holds it. */
  workerId: string;
}

/** `checkpoints/<job>/<step>`: the key prefix of a committed checkpoint. */
export type CheckpointKey = string;

export interface CheckpointRef {
  /** Key prefix `checkpoints/<job>/<step>` in spec.checkpoint.bucket. */
  checkpointKey: string;
  step: number;
}

export type WorkerCommand =
  | { type: 'assign'; assignment: Assignment }
  | {
    type: 'cancel' | 'pause'; jobId: string; reason?: string;
    /** Only this run of the job (absent: whichever runs). */
    runId?: string;
    /** A pause: after this step's stop vote, not the next one (POST /jobs/:id/pause `atStep`). */
    atStep?: number;
  };

export type JobState = 'queued' | 'scheduled' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';
export const JOB_STATES: readonly JobState[] = ['queued', 'scheduled', 'running', 'paused', 'completed', 'failed', 'cancelled'];
export const TERMINAL_JOB_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];
/** The states a job can still leave: bounded by the cluster's capacity, unlike the history. */
export const ACTIVE_JOB_STATES: readonly JobState[] = ['queued', 'scheduled', 'running', 'paused'];

export interface JobMember {
  rank: number;
  workerId: string;
  address: PeerAddress;
}

/**
 * What one rank of a run holds (@tensorfleet/training's planLayout): its place in the plan,
 * its part of the model and what that costs in memory. The job record and the dashboard show it.
 */
export interface RankLayout {
  rank: number;
  replica: number;
  /** Pipeline stage, AlexNet column, or 0 (data parallel). */
  stage: number;
  role: 'replica' | 'stage' | 'column';
  /** First and last section of the model the rank holds. */
  sections: [string, string];
  params: number;
  weightBytes: number;
  optimizerBytes: number;
  macs: number;
  workerId?: string;
}

export interface JobRecord {
  id: string;
  spec: JobSpec;
  /** Name of the API token that submitted the job; a token scoped to paths sees and controls only its own name's jobs. */
  owner?: string;
  state: JobState;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  step?: number;
  totalSteps?: number;
  epoch?: number;
  loss?: number;
  accuracy?: number;
  evalLoss?: number;
  evalAccuracy?: number;
  imagesPerSec?: number;
  /** Training steps per second of rank 0's last step (the metric's stepsPerSec). */
  stepsPerSec?: number;
  error?: string;
  /** Incremented by every assignment (every change of membership). */
  membershipEpoch: number;
  runId?: string;
  members?: JobMember[];
  /** Which worker holds which replica and stage, with its parameters and bytes (the current run's). */
  layout?: RankLayout[];
  /** Key prefix of the newest committed checkpoint, `checkpoints/<job>/<step>`. */
  lastCheckpoint?: CheckpointKey;
  /** When the `checkpoint` event of lastCheckpoint was written (ms since the epoch). */
  lastCheckpointAt?: number;
  /** Events-stream id the current run's events start after (the scheduler's cursor). */
  eventsFrom?: string;
  /** Set by POST /jobs/:id/pause while the ranks are checkpointing. */
  pauseRequested?: number;
  /** POST /jobs/:id/pause `atStep`: the ranks pause after this step; cleared when the job pauses or is resumed or cancelled. */
  pauseAtStep?: number;
  /** Elastic jobs: when the scheduler asked the run to checkpoint and stop so that it restarts on more workers. */
  growRequested?: number;
  /** How many times the job was put on the queue (1 at creation, +1 per resume). */
  attempt: number;
  /** Automatic restarts after a lost worker, oldest first (spec.recovery.maxRestarts bounds them). */
  restarts?: JobRestart[];
}

/** One automatic restart: which worker was lost and how much training it cost. */
export interface JobRestart {
  at: number;
  /** Why the worker counts as lost, e.g. `stopped heartbeating`. */
  cause: string;
  worker: string;
  /**
   * The step the job goes on from: its last committed checkpoint (0 without one) when the
   * restart is recorded, then what the restarted run really started from (`resumedFrom`).
   */
  fromStep: number;
  /** Steps trained before the loss and thrown away: stepReached − fromStep. */
  lostSteps: number;
  /** The job's step when the loss was seen (rank 0's last reported step). */
  stepReached?: number;
  /** Set once the restarted run started: from a survivor's memory, the S3 checkpoint, or step 0. */
  resumedFrom?: 'memory' | 'checkpoint' | 'start';
}

/** Fields updateJob may write (id and createdAt are fixed at creation). */
export type JobPatch = { [K in Exclude<keyof JobRecord, 'id' | 'createdAt'>]?: JobRecord[K] | null };

export interface MetricEntry {
  kind: 'train' | 'eval';
  step: number;
  epoch: number;
  loss: number;
  accuracy: number;
  lr?: number;
  imagesPerSec?: number;
  stepsPerSec?: number;
  rank: number;
  ts: number;
  [extra: string]: unknown;
}

export type JobEventType =
  | 'rank-started' | 'progress' | 'checkpoint' | 'rank-completed' | 'rank-failed' | 'rank-paused' | 'rank-cancelled'
  // written by the coordinator:
  | 'job-state';

export interface JobEvent {
  /** Stream id, set on events read back (readEvents). */
  id?: string;
  type: JobEventType;
  /** -1 for coordinator events. */
  rank: number;
  workerId?: string;
  runId?: string;
  step?: number;
  message?: string;
  checkpointKey?: string;
  /** For `job-state`. */
  state?: JobState;
  ts?: number;
  [extra: string]: unknown;
}


export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

/** One log line of a job's run, as a worker wrote it (`job:<id>:logs` stream). */
/** A committed checkpoint, as GET /jobs/:id/checkpoints lists it (coordinator, dashboard). */
export interface CheckpointView {
  step: number;
  epoch: number;
  /** `checkpoints/<job>/<step>`: what resume and export take. */
  key: string;
  bucket: string;
  createdAt: string;
  bytes: number;
}

export interface LogLine {
  /** Stream id, set on lines read back: the `after` cursor of the next read. */
  id?: string;
  /** ms since the epoch. */
  ts: number;
  rank: number;
  level: LogLevel;
  workerId: string;
  msg: string;
}
