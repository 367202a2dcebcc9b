import type { JobEvent, JobRecord, JobRestart, MemoryRef } from '@tensorfleet/control';

/**
 * Resume from the survivors' memory (the coordinator's half; the workers' is
 * libs/training/src/run/survivor-state.ts). A survivor of a lost peer keeps its state at the
 * last completed step and says which step with its stop event (`heldStep`). The restart names
 * the newest such step among the workers it claimed, and the run's ranks take it from that
 * worker over the collective instead of loading the S3 checkpoint. What the run really started
 * from (it falls back to the checkpoint when the holder no longer has the state) comes back in
 * rank 0's `rank-started` event and corrects the restart's record.
 */

/** The restart whose run has not started yet (the last one, without `resumedFrom`), if any. */
export function pendingRestart(job: Pick<JobRecord, 'restarts'>): JobRestart | null {
  const last = job.restarts?.at(-1);
  return last && last.resumedFrom === undefined ? last : null;
}

/** A rank's report that its run stopped before the end (where a survivor names the step it holds). */
export function isStopEvent(e: JobEvent): boolean {
  return e.type === 'rank-failed' || e.type === 'rank-cancelled';
}

/**
 * The newest step held by one of `workers` among the last run's stop events, if newer than
 * the checkpoint (`checkpointStep`); null otherwise.
 */
export function survivorHolding(events: JobEvent[], workers: string[], checkpointStep: number): MemoryRef | null {
  const claimed = new Set(workers);
  let best: MemoryRef | null = null;
  for (const e of events) {
    const step = e.heldStep;
    if (typeof step !== 'number' || !Number.isInteger(step) || !e.workerId || !claimed.has(e.workerId)) continue;
    if (!isStopEvent(e)) continue;
    if (step > checkpointStep && (!best || step > best.step)) best = { step, workerId: e.workerId };
  }
  return best;
}

/**
 * The job's restarts with the pending one completed from rank 0's `rank-started` event: where
 * the run started from and the steps that cost. Null when there is nothing to record.
 */
export function resumedRestarts(job: Pick<JobRecord, 'restarts'>, started: JobEvent): JobRestart[] | null {
  const r = pendingRestart(job);
  const from = started.resumedFrom;
  if (!r || (from !== 'memory' && from !== 'checkpoint' && from !== 'start') || typeof started.step !== 'number') return null;
  const reached = r.stepReached ?? r.fromStep + r.lostSteps;
  const done = { ...r, resumedFrom: from, fromStep: started.step, lostSteps: Math.max(0, reached - started.step) } as JobRestart;
  return [...job.restarts!.slice(0, -1), done];
}

/** For the job-state event: `resumed from the memory of a survivor at step 41 (0 steps lost)`. */
export function describeResume(r: JobRestart): string {
  const where = r.resumedFrom === 'memory' ? 'the memory of a survivor' : r.resumedFrom === 'checkpoint' ? 'the checkpoint' : 'the start (no checkpoint, no survivor state)';
  return `restart resumed from ${where} at step ${r.fromStep} (${r.lostSteps} step${r.lostSteps === 1 ? '' : 's'} lost)`;
}
