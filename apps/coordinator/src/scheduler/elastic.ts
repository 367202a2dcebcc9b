import { isElastic, recoveryOf } from '@tensorfleet/control';
import type { JobRecord } from '@tensorfleet/control';

/** How long, and after how many failures, a worker is kept out of a job (Horovod's blacklist, with a cool-down). */
export interface BlacklistOptions {
  /** Failures of one worker in one job (automatic restarts it caused) that keep it out. Default 2. */
  blacklistAfter?: number;
  /** For how long after its last such failure. Default 10 minutes. */
  blacklistMs?: number;
  /**
   * A worker registered this recently does not make a run grow yet: on a loaded host its first
   * heartbeats can lag, and a run stopped to grow onto a worker that then looks gone restarts
   * at the same size for nothing. Default 5 s.
   */
  growSettleMs?: number;
}

/**
 * Workers a job does not take now: those that caused at least blacklistAfter of its automatic
 * restarts, the last one less than blacklistMs ago. A worker that died keeps its id only if it
 * comes back under the same WORKER_ID (a flapping host); a healthy new one is never excluded.
 */
export function blacklistOf(job: Pick<JobRecord, 'restarts'>, now: number, o: BlacklistOptions = {}): string[] {
  const after = o.blacklistAfter ?? 2;
  const window = o.blacklistMs ?? 10 * 60_000;
  const recent = new Map<string, number>();
  for (const r of job.restarts ?? []) if (now - r.at < window) recent.set(r.worker, (recent.get(r.worker) ?? 0) + 1);
  return [...recent].filter(([, n]) => n >= after).map(([w]) => w);
}

/**
 * How many workers an elastic job's next run may take: up to recovery.maxDataParallel, and at
 * least dataParallel for its first run (it waits for the size it asked for), else
 * minDataParallel (a restart or a resize goes on with what there is). Null: not elastic.
 */
export function elasticClaim(job: Pick<JobRecord, 'spec' | 'restarts' | 'lastCheckpoint'>): { min: number; max: number } | null {
  if (!isElastic(job.spec)) return null;
  const r = recoveryOf(job.spec);
  const first = !(job.restarts?.length) && !job.lastCheckpoint;
  return { min: first ? job.spec.parallelism.dataParallel : r.minDataParallel, max: r.maxDataParallel };
}

/**
 * Whether a running elastic job should be stopped at its next step (a checkpoint) and restarted
 * larger: it runs below its maximum, at least one free worker outside its blacklist is idle and
 * alive, nobody asked it to pause or grow already, and no other job is queued (free workers go
 * to waiting jobs first).
 */
export function shouldGrow(
  job: Pick<JobRecord, 'spec' | 'restarts' | 'pauseRequested' | 'growRequested' | 'members'>,
  freeWorkers: string[], otherJobsQueued: boolean, now: number, o: BlacklistOptions = {},
): number | null {
  if (!isElastic(job.spec) || job.pauseRequested || job.growRequested || otherJobsQueued) return null;
  const size = job.members?.length ?? 0;
  const max = recoveryOf(job.spec).maxDataParallel;
  const excluded = new Set(blacklistOf(job, now, o));
  const usable = freeWorkers.filter((w) => !excluded.has(w)).length;
  return size > 0 && size < max && usable > 0 ? Math.min(max, size + usable) : null;
}
