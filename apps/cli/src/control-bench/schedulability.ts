/** A job the bench submitted that has not received its assignments yet. */
export interface WaitingJob {
  id: string;
  size: number;
  priority: number;
  createdAt: number;
  /** Since when the job could run, as far as the tracker can tell; null while it cannot. */
  since: number | null;
  /** Whether its scheduling latency counts (first runs; a restarted run re-queues uncounted). */
  counted: boolean;
}

/**
 * When does a waiting job become schedulable? When the idle alive workers cover it after
 * the jobs ahead of it took theirs, in the scheduler's order: higher priority first, then
 * older first; a job of the same priority may start around one that does not fit
 * (backfill), a job of lower priority may not (GangScheduler.outranked). The bench
 * re-evaluates this on every change it sees (a submission, a worker going idle, joining
 * or dying, an assignment) and times from the last moment a job became schedulable to
 * the moment its first rank read its assignment.
 */
export class SchedulabilityTracker {
  readonly waiting = new Map<string, WaitingJob>();
  /** Scheduling latencies (ms) of counted jobs. */
  readonly latencies: number[] = [];
  /** Counted jobs whose assignment came before the tracker saw them schedulable (latency 0 recorded). */
  early = 0;

  constructor(private readonly idleWorkers: () => number, private readonly aliveWorkers: () => number) {}

  add(job: Omit<WaitingJob, 'since'>, now: number): void {
    this.waiting.set(job.id, { ...job, since: null });
    this.update(now);
  }

  /** The job's first rank read its assignment at `now`. */
  assigned(id: string, now: number): void {
    const j = this.waiting.get(id);
    if (!j) return;
    this.waiting.delete(id);
    if (j.counted) {
      if (j.since === null) this.early++;
      this.latencies.push(j.since === null ? 0 : Math.max(0, now - j.since));
    }
    this.update(now);
  }

  update(now: number): void {
    let free = this.idleWorkers();
    const alive = this.aliveWorkers();
    let blocked = -Infinity;
    const order = [...this.waiting.values()].sort((a, b) => b.priority - a.priority || a.createdAt - b.createdAt);
    for (const j of order) {
      const runnable = j.priority >= blocked && j.size <= free;
      if (runnable) {
        free -= j.size;
        j.since ??= now;
      } else {
        j.since = null;
        if (j.size <= alive) blocked = Math.max(blocked, j.priority);
      }
    }
  }
}

/** The p-th percentile (0..100) by nearest rank; NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
