import { randomBytes } from 'node:crypto';
import { memberCurveKeys, recoveryOf, worldSizeOf } from '@tensorfleet/control';
import type {
  Assignment, ControlPlane, JobEvent, JobMember, JobRecord, JobState, MemoryRef, WorkerCommand,
} from '@tensorfleet/control';
import { blacklistOf, elasticClaim, shouldGrow, type BlacklistOptions } from './elastic';
import { describeResume, isStopEvent, pendingRestart, resumedRestarts, survivorHolding } from './survivor-resume';
import { WaitQueue } from './wait-queue';
import { Wakeup } from './wakeup';

export interface GangSchedulerOptions extends BlacklistOptions {
  /** First wait between claim attempts; doubles up to claimMaxBackoffMs. */
  claimBackoffMs: number;
  claimMaxBackoffMs: number;
  /** Period of a running job's event and heartbeat checks. */
  followPollMs: number;
  /**
   * A worker still marked busy with a job that ended (or paused) this long ago is set idle
   * when a job waits for workers: it was told to stop and never said it did (e.g. its
   * assignment was dropped from its queue by a cancel before it started).
   */
  staleBusyMs: number;
  /**
   * A queued job that the cluster could run and that has waited this long reserves the
   * workers against newer jobs of its priority: smaller gangs may start around a big one
   * (backfill) until then, so a big gang is never starved forever. The coordinator's config
   * sets it (FLEET_RESERVE_AFTER_MS, default 2 minutes).
   */
  reserveAfterMs: number;
  /**
   * After a rank reports PEER_LOST or TIMEOUT, how long to wait for the peer that caused it
   * to stop heartbeating before the failure counts as the rank's own. Default 15 s (above
   * the default heartbeat TTL of 10 s).
   */
  lossGraceMs?: number;
  /**
   * After an automatic restart, how long its claim waits for survivors still busy with the old
   * run (in a collective until its deadline) to report and go idle: they hold the newest state
   * in memory (survivor-resume.ts). Default 30 s.
   */
  survivorWaitMs?: number;
  /** Where the scheduler says what it did. Default: nothing. */
  log?: (msg: string) => void;
}

/** How a run of a job ended, from the scheduler's point of view. */
export type RunOutcome = JobState | 'gone' | 'shutdown' | 'superseded';

/** Thrown inside a loop when the coordinator shuts down: the job stays active and is re-run elsewhere. */
class Shutdown extends Error {}

const ACTIVE: readonly JobState[] = ['queued', 'scheduled', 'running'];

/** How long a job may stay `scheduled` under one run id before a scheduler takes the claim for abandoned. */
const SCHEDULED_GRACE_MS = 1000;

/** What putting a job back on the queue clears: shared by POST /jobs/:id/resume and automatic restarts. */
export const REQUEUED = { state: 'queued', error: null, finishedAt: null, pauseRequested: null, growRequested: null, members: null, runId: null } as const;

/**
 * A job that finishes frees its workers one by one (each marks itself idle): the wake-up
 * waits this long after the first so that its waiting jobs claim once, not once per worker.
 */
const FREED_COALESCE_MS = 15;

/** Survivors of a lost peer report one of these (libs/collective). */
const PEER_FAILURE = /PEER_LOST|TIMEOUT/;

type Lost = { member: JobMember; why: string };

/**
 * Gang scheduling of one job: wait for its world size (dataParallel × stages) of alive idle workers, claim them all
 * at once (Lua, so replicas never share a worker), dispatch the assignments together with
 * `running`, then follow the events until every rank has ended, one failed, or a member
 * stopped heartbeating. Everything it knows is read back from Redis on each call, so a
 * re-run for the same job (another replica, a restarted coordinator, BullMQ's stalled-job
 * recovery) picks up where the last one was.
 */
export class GangScheduler {
  private closing = false;
  private lastReclaim = 0;
  private readonly log: (msg: string) => void;
  readonly waiting: WaitQueue;
  private alive: { at: number; count: number; pending: Promise<number> | null } = { at: 0, count: 0, pending: null };
  private readonly freed = new Wakeup(FREED_COALESCE_MS);

  constructor(private readonly control: ControlPlane, private readonly opts: GangSchedulerOptions) {
    this.log = opts.log ?? (() => undefined);
    this.waiting = new WaitQueue(control);
  }

  /** Loops stop at their next wait; their jobs stay running in Redis for the next coordinator. */
  close(): void {
    this.closing = true;
    this.freed.wake();
  }

  /**
   * Workers became idle (ControlPlane.onWorkersFreed): waiting jobs try their claims now
   * instead of at the end of their backoff. A release of many workers is one wake-up.
   */
  workersFreed(): void {
    this.freed.signal();
  }

  /**
   * Schedules and follows one job until it ends. With `attempt`, a run for an older
   * queueing of the job (a resume re-queued it meanwhile) stops at once.
   */
  async run(jobId: string, attempt?: number): Promise<RunOutcome> {
    let waitingAs: string | null = null;
    let seenScheduled: string | null = null;
    const stopWaiting = async () => {
      if (!waitingAs) return;
      await this.waiting.remove(waitingAs);
      waitingAs = null;
      // The jobs behind this one may have been held back by it (outranked): they look again
      // now, as when workers are freed, instead of at the end of their backoff.
      this.freed.signal();
    };
    try {
      let backoff = this.opts.claimBackoffMs;
      for (;;) {
        const job = await this.control.getJob(jobId);
        if (!job) return 'gone';
        if (attempt !== undefined && job.attempt !== attempt) return 'superseded';
        if (job.state === 'running') {
          const outcome = await this.follow(job);
          // Still active: another coordinator moved the job on (restarted it, started a new
          // run) while this one followed the old run. Follow what it is now.
          if (outcome !== 'restarted' && !ACTIVE.includes(outcome as JobState)) return outcome;
          continue;
        }
        if (job.state === 'scheduled') {
          // Another scheduler may be between its claim and its dispatch (milliseconds): look
          // again after a grace before taking the run for abandoned.
          if (seenScheduled !== job.runId) {
            seenScheduled = job.runId ?? null;
            await this.sleep(SCHEDULED_GRACE_MS);
            continue;
          }
          // A claim whose dispatch never happened (the dispatch is atomic with `running`):
          // start over, then give the workers back. Fenced by the run id and in that order, so
          // a dispatch of that very run by a live coordinator either wins (and keeps its
          // workers) or fails (and finds the job queued).
          const undone = await this.control.transitionJob(jobId, ['scheduled'], { state: 'queued', members: null, runId: null }, fenceOf(job));
          if (undone.ok) await this.control.releaseWorkers(jobId, (job.members ?? []).map((m) => m.workerId));
          continue;
        }
        if (job.state !== 'queued') return job.state;
        waitingAs ??= await this.waiting.add(job);
        if (await this.tryStart(job)) {
          await stopWaiting();
          backoff = this.opts.claimBackoffMs;
          continue;
        }
        await this.reclaimStale();
        await this.sleep(backoff, this.freed);
        backoff = Math.min(backoff * 2, this.opts.claimMaxBackoffMs);
      }
    } catch (e) {
      if (e instanceof Shutdown) return 'shutdown';
      throw e;
    } finally {
      // A shut-down coordinator's waiting jobs keep their entries: they still wait, for the next one.
      if (!this.closing) await stopWaiting().catch(() => undefined);
    }
  }

  /**
   * Claims and dispatches; false when too few workers are free or a job of higher
   * priority is waiting for them (the job stays queued).
   */
  private async tryStart(job: JobRecord): Promise<boolean> {
    if (await this.outranked(job)) return false;
    if (await this.survivorsStillStopping(job)) return false;
    const ids = await this.claim(job);
    if (!ids) return false;
    const n = ids.length;
    const workers = await Promise.all(ids.map((id) => this.control.getWorker(id)));
    if (workers.some((w) => !w)) {
      // One unregistered between the claim and now: give the others back and retry.
      await this.control.releaseWorkers(job.id, ids);
      return false;
    }
    const members: JobMember[] = ids.map((workerId, rank) => ({ rank, workerId, address: workers[rank]!.address }));
    const membershipEpoch = job.membershipEpoch + 1;
    const runId = `${job.id}.${membershipEpoch}.${randomBytes(3).toString('hex')}`;
    const eventsFrom = await this.control.lastEventId(job.id);
    // The layout of the plan (from submission) with the workers now holding each rank.
    const layout = job.layout?.filter((l) => l.rank < n).map((l) => ({ ...l, workerId: ids[l.rank] }));
    // Fenced by the epoch and attempt read: a scheduler that read the job before another one
    // started (and perhaps restarted) it cannot start a second run of the same epoch.
    const scheduled = await this.control.transitionJob(job.id, ['queued'], {
      state: 'scheduled', members, runId, membershipEpoch, eventsFrom, error: null, finishedAt: null, pauseRequested: null, ...(layout ? { layout } : {}),
    }, { membershipEpoch: job.membershipEpoch, attempt: job.attempt });
    if (!scheduled.ok) {
      // The state changed under us (cancel, pause, or another replica scheduled it with
      // these very workers: claims by the same job share them). Give back only ours.
      const now = await this.control.getJob(job.id);
      const theirs = new Set(now && (now.state === 'scheduled' || now.state === 'running') ? (now.members ?? []).map((m) => m.workerId) : []);
      await this.control.releaseWorkers(job.id, ids.filter((w) => !theirs.has(w)));
      return true;
    }
    const resume = job.lastCheckpoint ? { checkpointKey: job.lastCheckpoint, step: stepOf(job.lastCheckpoint) } : undefined;
    // new CURVE keys per epoch, each secret only in its own rank's inbox (not the job record)
    const curve = members.some((m) => m.address.curve) ? memberCurveKeys(n) : null;
    const memory = await this.survivorState(job, ids, resume?.step ?? 0);
    // Read after the job is scheduled: a pause-at-step set since the claim's read (see JobsService.pauseAt).
    const pauseAtStep = (await this.control.getJob(job.id))?.pauseAtStep;
    const commands = members.map((m) => {
      const assignment: Assignment = {
        jobId: job.id, runId, membershipEpoch, rank: m.rank, worldSize: n,
        peers: members.map((p) => p.address), workers: ids, spec: job.spec, ...(resume ? { resume } : {}), ...(memory ? { memory } : {}), ...(curve ? { curve: curve[m.rank] } : {}),
        ...(pauseAtStep !== undefined ? { pauseAtStep } : {}),
      };
      return { workerId: m.workerId, cmd: { type: 'assign', assignment } as WorkerCommand };
    });
    const sent = await this.control.dispatchIfState(job.id, 'scheduled', { state: 'running', startedAt: Date.now() }, commands, { runId });
    if (!sent.ok) {
      await this.control.releaseWorkers(job.id, ids);
      return true;
    }
    const from = memory ? `, resuming from the memory of worker ${memory.workerId} at step ${memory.step}${resume ? ` (else from ${resume.checkpointKey})` : ''}` : resume ? `, resuming from ${resume.checkpointKey}` : '';
    await this.stateEvent(job.id, 'running', `ranks ${members.map((m) => `${m.rank}=${m.workerId}`).join(', ')}${from}`);
    this.log(`job ${job.id}: running on ${ids.join(', ')} (run ${runId})`);
    return true;
  }

  /**
   * Right after an automatic restart: members of the old run still busy with it (in a collective
   * until its deadline) that have not reported yet may hold its newest state; the claim waits
   * for their stop events, up to survivorWaitMs.
   */
  private async survivorsStillStopping(job: JobRecord): Promise<boolean> {
    const r = pendingRestart(job);
    if (!r || Date.now() - r.at > (this.opts.survivorWaitMs ?? 30_000)) return false;
    const busy = (await this.control.listWorkers()).filter((w) => w.alive && w.state === 'busy' && w.jobId === job.id).map((w) => w.id);
    if (!busy.length) return false;
    const reported = new Set((await this.lastRunEvents(job)).filter(isStopEvent).map((e) => e.workerId));
    return busy.some((w) => !reported.has(w));
  }

  /** For an automatic restart: the newest step a claimed survivor of the last run holds in memory, if newer than the checkpoint. */
  private async survivorState(job: JobRecord, ids: string[], checkpointStep: number): Promise<MemoryRef | null> {
    if (!pendingRestart(job)) return null;
    return survivorHolding(await this.lastRunEvents(job), ids, checkpointStep);
  }

  /** The events since the last run was dispatched (a queued job's eventsFrom is still that run's). */
  private async lastRunEvents(job: JobRecord): Promise<JobEvent[]> {
    const events: JobEvent[] = [];
    if (!job.eventsFrom) return events;
    for (let from = job.eventsFrom; ;) {
      const page = await this.control.readEvents(job.id, from);
      events.push(...page);
      if (page.length < 1000) return events;
      from = page[page.length - 1].id!;
    }
  }

  /** Rank 0 of a restarted run started: the restart's record says from where, and what it cost. */
  private async noteResume(jobId: string, started: JobEvent): Promise<void> {
    const job = await this.control.getJob(jobId);
    const restarts = job && resumedRestarts(job, started);
    if (!restarts) return;
    await this.control.updateJob(jobId, { restarts });
    const message = describeResume(restarts[restarts.length - 1]);
    await this.stateEvent(jobId, 'running', message);
    this.log(`job ${jobId}: ${message}`);
  }

  /** The job's workers: exactly its world size, or for an elastic job what its range allows (elasticClaim), its blacklist left out. */
  private async claim(job: JobRecord): Promise<string[] | null> {
    const range = elasticClaim(job);
    if (!range) return this.control.claimWorkers(job.id, worldSizeOf(job.spec));
    return this.control.claimWorkersBetween(job.id, range.min, range.max, blacklistOf(job, Date.now(), this.opts));
  }

  /**
   * An elastic run below its maximum with free workers about: ask its ranks to checkpoint and
   * stop at their next step (a pause for this run only); follow then re-queues it, and
   * tryStart claims the larger gang. The global data position makes the resumed run exact.
   */
  private async growIfFree(job: JobRecord): Promise<void> {
    const size = job.members?.length ?? 0;
    if (!elasticClaim(job) || job.growRequested || job.pauseRequested) return;
    const members = new Set((job.members ?? []).map((m) => m.workerId));
    const settled = Date.now() - (this.opts.growSettleMs ?? 5000);
    const free = (await this.control.listWorkers()).filter((w) => w.alive && w.state === 'idle' && !members.has(w.id) && w.registeredAt <= settled).map((w) => w.id);
    if (!free.length) return;
    const queued = (await this.control.listJobs({ state: 'queued', limit: 10_000 })).some((o) => o.id !== job.id);
    const to = shouldGrow(job, free, queued, Date.now(), this.opts);
    if (to === null) return;
    const r = await this.control.transitionJob(job.id, ['running'], { growRequested: Date.now() }, fenceOf(job));
    if (!r.ok) return;
    const reason = `growing from ${size} to up to ${to} replicas: checkpoint and restart`;
    await this.control.stopRun(job, job.members ?? [], 'pause', reason);
    await this.stateEvent(job.id, 'running', reason);
    this.log(`job ${job.id}: ${reason}`);
  }

  /** A run that stopped because growIfFree asked it to (not a user's pause): back on the queue, from the checkpoint it just wrote. */
  private async requeueToGrow(job: JobRecord): Promise<RunOutcome | 'restarted'> {
    const r = await this.control.transitionJob(job.id, ['running'], REQUEUED, fenceOf(job));
    if (!r.ok) return r.previous ?? 'gone';
    const now = await this.control.getJob(job.id);
    const message = `stopped at a checkpoint to grow (it ran on ${job.members?.length ?? 0}); ${resumeWhere(now ?? job)}`;
    await this.control.appendEvent(job.id, { type: 'job-state', rank: -1, state: 'queued', message });
    this.log(`job ${job.id}: ${message}`);
    return 'restarted';
  }

  private async reclaimStale(): Promise<void> {
    const now = Date.now();
    if (now - this.lastReclaim < Math.min(this.opts.staleBusyMs, 5000)) return;
    this.lastReclaim = now;
    const busy = (await this.control.listWorkers()).filter((w) => w.alive && w.state === 'busy' && w.jobId);
    // One read per job, not per worker: a 64-rank job is 64 busy workers.
    const jobIds = [...new Set(busy.map((w) => w.jobId!))];
    const pipe = this.control.redis.pipeline();
    for (const id of jobIds) pipe.hmget(this.control.keys.job(id), 'state', 'finishedAt');
    const res = (await pipe.exec()) ?? [];
    const jobs = new Map(jobIds.map((id, i) => {
      const [state, finishedAt] = (res[i]?.[1] ?? [null, null]) as (string | null)[];
      return [id, state ? { state: state as JobState, finishedAt: Number(finishedAt ?? 0) } : null] as const;
    }));
    for (const w of busy) {
      const j = jobs.get(w.jobId!);
      if (j && (isActive(j.state) || now - j.finishedAt < this.opts.staleBusyMs)) continue;
      if (await this.control.releaseWorkers(w.jobId!, [w.id])) {
        this.log(`worker ${w.id} was still busy with ${j ? `${j.state} ` : 'deleted '}job ${w.jobId}: set idle`);
      }
    }
  }

  /**
   * Whether another queued job that the cluster could run (its gang is no larger than the
   * alive workers) goes first, even if this one would fit now: one of higher priority, or
   * an older one of the same priority that has waited reserveAfterMs (its reservation).
   * Before that, equal priorities do not wait for each other: a small job may start while
   * a larger one waits.
   */
  private async outranked(job: JobRecord): Promise<boolean> {
    const ahead = await this.waiting.ahead(job, Date.now() - this.opts.reserveAfterMs);
    if (!ahead.length) return false;
    const alive = await this.aliveWorkers();
    for (const o of ahead) {
      if (o.size <= alive && await this.waiting.stillQueued(o)) return true;
    }
    return false;
  }

  /**
   * Alive workers, counted at most once a second for all the jobs this scheduler follows:
   * every waiting job asks on every claim attempt, and counting reads the whole registry.
   */
  private async aliveWorkers(): Promise<number> {
    if (Date.now() - this.alive.at < 1000) return this.alive.count;
    this.alive.pending ??= (async () => {
      try {
        const ids = await this.control.redis.smembers(this.control.keys.workers());
        const pipe = this.control.redis.pipeline();
        for (const id of ids) pipe.exists(this.control.keys.alive(id));
        const count = ((await pipe.exec()) ?? []).filter(([, v]) => v === 1).length;
        this.alive = { at: Date.now(), count, pending: null };
        return count;
      } finally {
        this.alive.pending = null;
      }
    })();
    return this.alive.pending;
  }

  /** Follows a running job until it ends. */
  private async follow(job: JobRecord): Promise<RunOutcome | 'restarted'> {
    const members = job.members ?? [];
    const worldSize = members.length;
    const ended = new Map<number, JobEvent>();
    let cursor = job.eventsFrom ?? '0';
    let started: JobEvent | null = null;
    const take = (events: JobEvent[]): JobEvent | null => {
      for (const e of events) {
        cursor = e.id ?? cursor;
        if (e.runId !== undefined && e.runId !== job.runId) continue;
        if (e.type === 'rank-started' && e.rank === 0) started = e;
        if (e.type === 'rank-failed') return e;
        if (e.type === 'rank-completed' || e.type === 'rank-paused' || e.type === 'rank-cancelled') ended.set(e.rank, e);
      }
      return null;
    };
    // A rank-failed event read by the second look below is kept for the next pass (the
    // cursor is past it by then): a survivor reports and goes idle, and reading it as
    // "dropped the job" would blame the survivor instead of the rank it reported.
    let pending: JobEvent | null = null;
    for (;;) {
      const failed = pending ?? take(await this.control.readEvents(job.id, cursor));
      pending = null;
      if (started) {
        await this.noteResume(job.id, started);
        started = null;
      }
      if (failed) {
        const who = members.find((m) => m.rank === failed.rank);
        const error = `rank ${failed.rank} (worker ${failed.workerId ?? who?.workerId ?? '?'}) failed: ${failed.message ?? 'no message'}`;
        const lost = PEER_FAILURE.test(failed.message ?? '') ? await this.peersThatStopped(job.id, members, ended, failed.rank) : [];
        if (lost.length) return this.restartOrFail(job, members, `${error}, after ${describeLost(lost)}`, lost);
        const stalled = PEER_FAILURE.test(failed.message ?? '') ? stalledPeers(failed, members) : [];
        // Every member still heartbeats: a peer stalled or a link broke. The run cannot go on,
        // but nothing says the workers are gone, so it restarts like a loss (the blacklist keeps
        // out a worker that keeps doing it).
        if (stalled.length) return this.restartOrFail(job, members, error, stalled);
        return this.endFailed(job, members, error, [failed.rank]);
      }
      const current = await this.control.getJob(job.id);
      if (ended.size >= worldSize) {
        const all = [...ended.values()];
        if (current?.growRequested && !current.pauseRequested && all.every((e) => e.type === 'rank-paused')) return this.requeueToGrow(current);
        return this.endAll(job, all);
      }

      if (!current) return 'gone';
      if (current.state !== 'running' || current.runId !== job.runId) return current.state;
      await this.growIfFree(current);

      const lost = await this.lostMembers(job.id, members, ended);
      if (lost.length) {
        // A rank may have finished and gone away between our two reads: read once more
        // (workers append their last event before they go idle or exit).
        pending = take(await this.control.readEvents(job.id, cursor));
        if (pending === null) {
          const still = lost.filter((l) => !ended.has(l.member.rank));
          if (still.length) {
            return this.restartOrFail(job, members, `${describeLost(still)}: lost, the run cannot continue`, still);
          }
        }
        continue;
      }
      await this.sleep(this.opts.followPollMs);
    }
  }

  /**
   * Members still expected to report that are gone: heartbeat key expired, or the registry
   * entry no longer holds this job (the worker restarted and re-registered, or was removed).
   */
  private async lostMembers(jobId: string, members: JobMember[], ended: Map<number, JobEvent>): Promise<Lost[]> {
    const pipe = this.control.redis.pipeline();
    for (const m of members) pipe.exists(this.control.keys.alive(m.workerId)).hget(this.control.keys.worker(m.workerId), 'jobId');
    const res = (await pipe.exec()) ?? [];
    const out: Lost[] = [];
    members.forEach((m, i) => {
      if (ended.has(m.rank)) return;
      if (res[2 * i]?.[1] !== 1) out.push({ member: m, why: 'stopped heartbeating' });
      else if (res[2 * i + 1]?.[1] !== jobId) out.push({ member: m, why: 'dropped the job (restarted or re-registered) without reporting' });
    });
    return out;
  }

  /**
   * The members that stopped heartbeating within lossGraceMs of a rank's PEER_LOST/TIMEOUT
   * (ranks that reported and went idle are not lost, so only the heartbeat counts here).
   */
  private async peersThatStopped(jobId: string, members: JobMember[], ended: Map<number, JobEvent>, reporter: number): Promise<Lost[]> {
    const deadline = Date.now() + (this.opts.lossGraceMs ?? 15_000);
    for (;;) {
      const lost = (await this.lostMembers(jobId, members, ended)).filter((l) => l.member.rank !== reporter && l.why === 'stopped heartbeating');
      if (lost.length || Date.now() >= deadline) return lost;
      await this.sleep(this.opts.followPollMs);
    }
  }

  /**
   * A run that lost workers goes back on the queue to resume from the last committed
   * checkpoint (tryStart gives it the checkpoint, as after POST /jobs/:id/resume) while
   * spec.recovery.maxRestarts allows; then the job fails saying the budget is spent.
   */
  private async restartOrFail(job: JobRecord, members: JobMember[], error: string, lost: Lost[]): Promise<RunOutcome | 'restarted'> {
    const culprits = lost.map((l) => l.member.rank);
    const current = (await this.control.getJob(job.id)) ?? job;
    const done = current.restarts ?? [];
    const budget = recoveryOf(current.spec).maxRestarts;
    if (done.length >= budget) {
      return this.endFailed(job, members, `${error}; restart budget spent (${done.length} of ${budget} automatic restarts used, spec.recovery.maxRestarts)`, culprits);
    }
    if (current.pauseRequested) {
      // The user asked for a pause and the run cannot finish it: pause at the last checkpoint
      // rather than start a run that would have to be paused again.
      const p = await this.control.transitionJob(job.id, ['running'], { state: 'paused', pauseRequested: null, pauseAtStep: null, finishedAt: Date.now() }, fenceOf(job));
      if (!p.ok) return p.previous ?? 'gone';
      await this.control.stopRun(job, members, 'cancel', error);
      const message = `${error}; a pause was pending: paused, ${resumeWhere(current)}`;
      await this.stateEvent(job.id, 'paused', message);
      this.log(`job ${job.id}: ${message}`);
      return 'paused';
    }
    const fromStep = current.lastCheckpoint ? stepOf(current.lastCheckpoint) : 0;
    // fromStep and lostSteps are the checkpoint's until the restarted run says where it started (noteResume).
    const restart = { at: Date.now(), cause: lost[0].why, worker: lost[0].member.workerId, fromStep, lostSteps: Math.max(0, (current.step ?? 0) - fromStep), stepReached: current.step ?? 0 };
    const r = await this.control.transitionJob(job.id, ['running'], { ...REQUEUED, restarts: [...done, restart] }, fenceOf(job));
    if (!r.ok) return r.previous ?? 'gone';
    // Every member stops now instead of at its collective deadline, the lost ones too: one
    // read as lost may still be training (a stall, a heartbeat starved on a loaded host) and
    // would go on beside the new run. The cancel names the old run, so one read after the new
    // assignment does not stop the restarted run.
    await this.control.stopRun(job, members, 'cancel', error);
    const message = `${error}; automatic restart ${done.length + 1} of ${budget}, ${resumeWhere(current)}`;
    await this.control.appendEvent(job.id, { type: 'job-state', rank: -1, state: 'queued', message, restart });
    this.log(`job ${job.id}: ${message}`);
    return 'restarted';
  }

  private async endAll(job: JobRecord, events: JobEvent[]): Promise<RunOutcome> {
    const kinds = new Set(events.map((e) => e.type));
    const state: JobState = kinds.has('rank-cancelled') ? 'cancelled' : kinds.has('rank-paused') ? 'paused' : 'completed';
    const done = await this.control.transitionJob(job.id, ['running'], { state, finishedAt: Date.now(), pauseRequested: null, pauseAtStep: null, growRequested: null }, fenceOf(job));
    if (!done.ok) return done.previous ?? 'gone';
    await this.stateEvent(job.id, state);
    this.log(`job ${job.id}: ${state}`);
    return state;
  }

  private async endFailed(job: JobRecord, members: JobMember[], error: string, culprits: number[]): Promise<RunOutcome> {
    const done = await this.control.transitionJob(job.id, ['running'], { state: 'failed', error, finishedAt: Date.now() }, fenceOf(job));
    if (!done.ok) return done.previous ?? 'gone';
    await this.control.stopRun(job, members.filter((m) => !culprits.includes(m.rank)), 'cancel', error);
    await this.stateEvent(job.id, 'failed', error);
    this.log(`job ${job.id}: failed: ${error}`);
    return 'failed';
  }

  private async stateEvent(jobId: string, state: JobState, message?: string): Promise<void> {
    await this.control.appendEvent(jobId, { type: 'job-state', rank: -1, state, ...(message ? { message } : {}) });
  }

  /** Waits `ms`, or less when `wake` fires first. */
  private async sleep(ms: number, wake?: Wakeup): Promise<void> {
    if (this.closing) throw new Shutdown();
    let timer: NodeJS.Timeout | undefined;
    const woken = wake?.next();
    await Promise.race([new Promise((r) => (timer = setTimeout(r, ms))), ...(woken ? [woken.woken] : [])]);
    clearTimeout(timer);
    woken?.cancel();
    if (this.closing) throw new Shutdown();
  }
}

/**
 * A run's fencing token: what the scheduler does about the run it follows (restart, end,
 * grow) applies only while the job is still on that run, never to a newer one that another
 * coordinator (a replica, or one that took over a lapsed lock) started meanwhile.
 */
function fenceOf(job: Pick<JobRecord, 'runId'>): { runId: string | null } {
  return { runId: job.runId ?? null };
}

export function isActive(state: JobState): boolean {
  return ACTIVE.includes(state);
}

/** Where a re-queued job goes on from, for its event. */
export function resumeWhere(job: Pick<JobRecord, 'lastCheckpoint'>): string {
  return job.lastCheckpoint ? `resumes from ${job.lastCheckpoint}` : 'restarts from step 0 (no checkpoint)';
}

/** The members a PEER_LOST/TIMEOUT names (`TIMEOUT (rank 1, 2): …`), else every other member. */
function stalledPeers(failed: JobEvent, members: JobMember[]): Lost[] {
  const named = /(?:PEER_LOST|TIMEOUT) \(rank ([\d, ]+)\)/.exec(failed.message ?? '')?.[1].split(',').map((r) => Number(r.trim())) ?? [];
  const blamed = members.filter((m) => (named.length ? named.includes(m.rank) : m.rank !== failed.rank));
  return blamed.map((member) => ({ member, why: 'stalled a collective (PEER_LOST/TIMEOUT while still heartbeating)' }));
}

function describeLost(lost: Lost[]): string {
  return lost.map((l) => `worker ${l.member.workerId} (rank ${l.member.rank}) ${l.why}`).join('; ');
}

/** The step of `checkpoints/<job>/<step>`. */
export function stepOf(checkpointKey: string): number {
  const n = Number(checkpointKey.replace(/\/+$/, '').split('/').pop());
  return Number.isInteger(n) ? n : 0;
}
