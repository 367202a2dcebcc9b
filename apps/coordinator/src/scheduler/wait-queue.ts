import { worldSizeOf, type ControlPlane, type JobRecord } from '@tensorfleet/control';

/** One waiting job as the queue holds it. */
export interface WaitingEntry {
  id: string;
  size: number;
  priority: number;
  createdAt: number;
  member: string;
}

/**
 * The jobs waiting for workers, in the order the scheduler serves them, so that asking
 * "does a job go before this one?" costs the jobs ahead of it, not every job ever
 * submitted (GangScheduler.outranked used to list the whole history for it). A sorted set
 * `<prefix>sched:waiting` scored by -priority, each member `createdAt|worldSize|id`: within
 * a priority, the zero-padded creation time orders members oldest first. An entry is added
 * when a job is queued and removed when it starts or stops waiting; one left behind (a
 * coordinator died) is dropped the first time it is found not queued.
 */
export class WaitQueue {
  constructor(private readonly control: ControlPlane) {}

  static member(job: Pick<JobRecord, 'id' | 'createdAt' | 'spec'>): string {
    return `${String(job.createdAt).padStart(15, '0')}|${worldSizeOf(job.spec)}|${job.id}`;
  }

  /** Adds (or keeps) the job's entry; returns it, for remove(). */
  async add(job: Pick<JobRecord, 'id' | 'createdAt' | 'spec'>): Promise<string> {
    const member = WaitQueue.member(job);
    await this.control.redis.zadd(this.control.keys.waiting(), -job.spec.priority, member);
    return member;
  }

  async remove(member: string): Promise<void> {
    await this.control.redis.zrem(this.control.keys.waiting(), member);
  }

  /**
   * Waiting jobs other than `job` that go before it: every one of higher priority, and those
   * of its priority created before it and no later than `reservedBefore` (their reservation).
   */
  async ahead(job: Pick<JobRecord, 'id' | 'createdAt' | 'spec'>, reservedBefore: number): Promise<WaitingEntry[]> {
    const key = this.control.keys.waiting();
    const p = -job.spec.priority;
    const res = await this.control.redis.pipeline()
      .zrangebyscore(key, '-inf', `(${p}`, 'WITHSCORES')
      .zrangebyscore(key, p, p, 'WITHSCORES')
      .exec();
    const out: WaitingEntry[] = [];
    const cutoff = Math.min(job.createdAt - 1, reservedBefore);
    for (const [err, flat] of res ?? []) {
      if (err) throw err;
      const xs = flat as string[];
      for (let i = 0; i < xs.length; i += 2) {
        const e = parse(xs[i], 0 - Number(xs[i + 1]));
        if (!e || e.id === job.id) continue;
        if (e.priority === job.spec.priority && e.createdAt > cutoff) break; // oldest first: the rest are newer
        out.push(e);
      }
    }
    return out;
  }

  /** Whether the entry's job still waits; an entry whose job does not is dropped. */
  async stillQueued(e: WaitingEntry): Promise<boolean> {
    const state = await this.control.redis.hget(this.control.keys.job(e.id), 'state');
    if (state === 'queued') return true;
    await this.remove(e.member);
    return false;
  }
}

function parse(member: string, priority: number): WaitingEntry | null {
  const m = /^(\d+)\|(\d+)\|(.+)$/.exec(member);
  return m ? { createdAt: Number(m[1]), size: Number(m[2]), id: m[3], priority, member } : null;
}
