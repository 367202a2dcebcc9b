import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Assignment, ControlPlane } from '@tensorfleet/control';
import type { CollectiveNode } from '@tensorfleet/collective';
import type { ObjectStore } from '@tensorfleet/data';
import { runTraining, type RunOutcome, type StopRequest, type SurvivorMemory } from '@tensorfleet/training';

export type { RunOutcome, StopRequest };

export interface RunContext {
  workerId: string;
  control: ControlPlane;
  store: ObjectStore;
  node: CollectiveNode;
  collectiveTimeoutMs: number;
  /** The stop request for this job seen in the worker's inbox that applies after `step` (a pause may name a later step). */
  stopRequested: (step: number) => StopRequest;
  log: (msg: string) => void;
  /** This process's memory of its last stopped run, which outlives the run for its restart. */
  memory: SurvivorMemory;
  /** FLEET_SAMPLE_LOG: where to append each step's sample keys. */
  sampleLogDir?: string;
}

/**
 * One rank of one job: the assignment wired to @tensorfleet/training's run. Its communicator
 * is joined over this worker's ZeroMQ node, and what the run reports goes to Redis: events on
 * the job's stream, metrics (rank 0), and the job record's progress fields.
 */
export function runAssignment(ctx: RunContext, a: Assignment): Promise<RunOutcome> {
  const { control, workerId } = ctx;
  return runTraining(
    {
      store: ctx.store,
      log: ctx.log,
      stopRequested: ctx.stopRequested,
      memory: ctx.memory,
      ...(ctx.sampleLogDir ? { samplesSeen: sampleLogger(ctx.sampleLogDir, a) } : {}),
      joinWorld: () =>
        ctx.node.join({ runId: a.runId, epoch: a.membershipEpoch, rank: a.rank, worldSize: a.worldSize, peers: a.peers, timeoutMs: ctx.collectiveTimeoutMs, ...(a.curve ? { curve: a.curve } : {}) }),
      reporter: {
        started: async (step, from) => void (await control.appendEvent(a.jobId, { type: 'rank-started', rank: a.rank, workerId, runId: a.runId, step, resumedFrom: from })),
        // The checkpoint event also records the job's lastCheckpoint (ControlPlane.appendEvent).
        checkpointed: async (key, step) => void (await control.appendEvent(a.jobId, { type: 'checkpoint', rank: a.rank, workerId, runId: a.runId, step, checkpointKey: key })),
        // Rank 0's metric also updates the job record's progress fields (ControlPlane.appendMetric).
        metric: async (m) => void (await control.appendMetric(a.jobId, m)),
        updateJob: async (patch) => void (await control.updateJob(a.jobId, patch)),
      },
    },
    a,
  );
}

/** One JSON line per step to `<dir>/<runId>.r<rank>.jsonl` (a file per rank: no interleaving). */
function sampleLogger(dir: string, a: Assignment) {
  const file = join(dir, `${a.runId}.r${a.rank}.jsonl`);
  return (e: { step: number; epoch: number; rank: number; keys: string[] }) => {
    appendFileSync(file, `${JSON.stringify({ runId: a.runId, worldSize: a.worldSize, ...e })}\n`);
  };
}
