import { TERMINAL_JOB_STATES, type ControlPlane, type JobState } from '@tensorfleet/control';

/**
 * Deletes the oldest finished jobs (record and streams, not checkpoints) until at most
 * `keep` jobs remain; jobs still queued, running or paused are never deleted, so the bound
 * holds up to the active ones. Costs O(jobs deleted), read a batch at a time from the
 * oldest end of the creation index. Returns how many were deleted.
 */
export async function trimJobHistory(control: ControlPlane, keep: number, batch = 500): Promise<number> {
  if (!Number.isInteger(keep) || keep < 0) throw new RangeError(`keep must be a non-negative integer, got ${keep}`);
  let excess = (await control.redis.zcard(control.keys.jobs())) - keep;
  let kept = 0;
  let removed = 0;
  while (excess > 0) {
    const ids = await control.redis.zrange(control.keys.jobs(), kept, kept + Math.min(batch, excess) - 1);
    if (!ids.length) break;
    const pipe = control.redis.pipeline();
    for (const id of ids) pipe.hget(control.keys.job(id), 'state');
    const states = ((await pipe.exec()) ?? []).map(([, s]) => s as JobState | null);
    for (let i = 0; i < ids.length; i++) {
      const s = states[i];
      if (s && !TERMINAL_JOB_STATES.includes(s)) { kept++; continue; }
      await control.deleteJob(ids[i]);
      removed++;
      excess--;
    }
  }
  return removed;
}
