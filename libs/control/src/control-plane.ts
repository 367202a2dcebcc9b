import { randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import { ControlPlaneError } from './errors';
import type { JobSpec } from './job-spec';
import { ControlKeys } from './keys';
import { CLAIM_WORKERS, DISPATCH_IF_STATE, FORGET_LOST_WORKERS, HEARTBEAT, INDEX_JOB_STATES, RELEASE_WORKERS, TRANSITION_JOB } from './lua';
import type {
  RankLayout,
  JobEvent, JobPatch, JobRecord, JobState, LogLevel, LogLine, MetricEntry, PeerAddress, WorkerCommand, WorkerInfo,
  RegisterOptions, WorkerRegistration, WorkerState,
} from './types';
import { JOB_STATES, LOG_LEVELS } from './types';

export interface ControlPlaneOptions {
  /** Prefix of every key; a missing trailing ':' is added (`tf` = `tf:`). Default `tf:`. */
  prefix?: string;
  /** TTL of a worker's heartbeat key, ms. Default 10000 (workers refresh every 2 s). */
  heartbeatTtlMs?: number;
  /** Approximate cap of each job's metrics stream (XADD MAXLEN ~). Default 100000. */
  metricsMaxLen?: number;
  /** Approximate cap of each job's events stream. Default 10000. */
  eventsMaxLen?: number;
  /** Approximate cap of each job's log stream, in lines (appendLog). Default 10000. */
  logsMaxLen?: number;
}

const DEFAULTS: Required<ControlPlaneOptions> = { prefix: 'tf:', heartbeatTtlMs: 10_000, metricsMaxLen: 100_000, eventsMaxLen: 10_000, logsMaxLen: 10_000 };

const JSON_JOB_FIELDS = new Set(['spec', 'members', 'layout', 'restarts']);
const NUMERIC_JOB_FIELDS = new Set([
  'stepsPerSec', 'lastCheckpointAt',
  'createdAt', 'startedAt', 'finishedAt', 'step', 'totalSteps', 'epoch', 'loss', 'accuracy', 'evalLoss',
  'evalAccuracy', 'imagesPerSec', 'membershipEpoch', 'pauseRequested', 'pauseAtStep', 'growRequested', 'attempt',
]);

/**
 * The control plane in Redis: worker registry, worker inboxes, job records, metric and
 * event streams. Stateless apart from the connection: any number of processes may use it.
 *
 * Blocking calls (nextCommand, readEvents with blockMs) hold the connection for the whole
 * wait and delay every other command queued on it: give them a ControlPlane over a
 * dedicated connection (`redis.duplicate()`), never the one the rest of the process uses.
 */
export class ControlPlane {
  readonly keys: ControlKeys;
  readonly options: Required<ControlPlaneOptions>;

  constructor(readonly redis: Redis, opts: ControlPlaneOptions = {}) {
    const o = { ...DEFAULTS, ...stripUndefined(opts) };
    if (!o.prefix || /\s/.test(o.prefix)) throw new ControlPlaneError(`prefix must be non-empty without spaces, got "${o.prefix}"`, 'BAD_OPTIONS');
    if (!o.prefix.endsWith(':')) o.prefix += ':';
    this.options = o;
    for (const k of ['heartbeatTtlMs', 'metricsMaxLen', 'eventsMaxLen', 'logsMaxLen'] as const) {
      if (!Number.isInteger(o[k]) || o[k] < 1) throw new ControlPlaneError(`${k} must be a positive integer, got ${o[k]}`, 'BAD_OPTIONS');
    }
    this.keys = new ControlKeys(o.prefix);
  }

  // ---- worker registry ----

  /** Adds (or refreshes) a worker, heartbeat started: idle with no job, or busy as `opts.busy` says. */
  async registerWorker(reg: WorkerRegistration, opts: RegisterOptions = {}): Promise<WorkerInfo> {
    if (!reg.id || /[\s:]/.test(reg.id)) throw new ControlPlaneError(`worker id must be non-empty without spaces or ":", got "${reg.id}"`, 'BAD_OPTIONS');
    const now = opts.now ?? Date.now();
    const ttlMs = Math.max(1, Math.round(opts.ttlMs ?? this.options.heartbeatTtlMs));
    const busy = opts.busy ?? null;
    const state: WorkerState = busy ? 'busy' : 'idle';
    const m = this.redis.multi().sadd(this.keys.workers(), reg.id);
    this.indexWorkerState(m, reg.id, state, busy?.jobId);
    await m
      .del(this.keys.worker(reg.id))
      .hset(this.keys.worker(reg.id), {
        id: reg.id, host: reg.host, pid: String(reg.pid), backend: reg.backend, device: reg.device,
        address: JSON.stringify(reg.address ?? null), state, jobId: busy?.jobId ?? '', rank: busy ? String(busy.rank) : '',
        registeredAt: String(now), lastSeen: String(now),
      })
      .set(this.keys.alive(reg.id), String(now), 'PX', ttlMs)
      .exec().then(checkExec);
    return { ...reg, state, jobId: busy?.jobId ?? null, rank: busy?.rank ?? null, registeredAt: now, lastSeen: now, alive: true };
  }

  /**
   * Refreshes the heartbeat key (TTL heartbeatTtlMs unless given) and lastSeen. Returns
   * false, and writes nothing, when the worker is not registered (never was, or was
   * forgotten by forgetLostWorkers): the caller should register again.
   */
  async heartbeat(workerId: string, ttlMs = this.options.heartbeatTtlMs): Promise<boolean> {
    const ok = await this.redis.eval(HEARTBEAT, 3, this.keys.workers(), this.keys.alive(workerId), this.keys.worker(workerId),
      workerId, String(Date.now()), String(Math.max(1, Math.round(ttlMs))));
    return ok === 1;
  }

  /**
   * Removes from the registry the workers lost (heartbeat expired) for longer than
   * `lostForMs`, or only those of `ids`; alive workers are never removed. Returns the
   * removed ids. The coordinator sweeps with this so that a dead worker's entry does not
   * stay in the dashboard forever.
   */
  async forgetLostWorkers(lostForMs: number, ids: string[] = [], now = Date.now()): Promise<string[]> {
    if (!(lostForMs >= 0)) throw new ControlPlaneError(`lostForMs must be >= 0, got ${lostForMs}`, 'BAD_OPTIONS');
    // The script declares every key it touches, so it is given the candidates: every registered worker unless `ids`.
    const candidates = ids.length ? ids : await this.redis.smembers(this.keys.workers());
    const gone: string[] = [];
    for (let i = 0; i < candidates.length; i += 500) {
      const batch = candidates.slice(i, i + 500);
      const keys = [this.keys.workers(), this.keys.idleWorkers(), ...batch.flatMap((id) => [this.keys.worker(id), this.keys.alive(id), this.keys.inbox(id)])];
      gone.push(...((await this.redis.eval(FORGET_LOST_WORKERS, keys.length, ...keys, String(now - lostForMs), ...batch)) as string[]));
    }
    return gone;
  }

  async unregisterWorker(workerId: string): Promise<void> {
    await this.redis.multi()
      .srem(this.keys.workers(), workerId)
      .srem(this.keys.idleWorkers(), workerId)
      .del(this.keys.worker(workerId), this.keys.alive(workerId), this.keys.inbox(workerId))
      .exec().then(checkExec);
  }

  async getWorker(workerId: string): Promise<WorkerInfo | null> {
    const [[, h], [, alive]] = (await this.redis.multi()
      .hgetall(this.keys.worker(workerId)).exists(this.keys.alive(workerId)).exec().then(checkExec)) as [unknown, unknown][];
    return decodeWorker(h as Record<string, string>, alive === 1);
  }

  /**
   * Registered workers sorted by id, with `alive` from its heartbeat key: every one, or the
   * page `offset`..`offset + limit` (only that page's entries are read).
   */
  async listWorkers(page: { limit?: number; offset?: number } = {}): Promise<WorkerInfo[]> {
    const offset = page.offset ?? 0;
    const ids = (await this.redis.smembers(this.keys.workers())).sort().slice(offset, page.limit === undefined ? undefined : offset + page.limit);
    if (!ids.length) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.worker(id)).exists(this.keys.alive(id));
    const res = checkExec(await pipe.exec());
    const out: WorkerInfo[] = [];
    for (let i = 0; i < ids.length; i++) {
      const w = decodeWorker(res[2 * i][1] as Record<string, string>, res[2 * i + 1][1] === 1);
      if (w) out.push(w);
    }
    return out;
  }

  /** Sets a worker's state and job (null, '' or a negative rank clears jobId/rank). */
  async markWorker(workerId: string, mark: { state: WorkerState; jobId?: string | null; rank?: number | null }): Promise<void> {
    const m = this.redis.multi().hset(this.keys.worker(workerId), {
      state: mark.state,
      jobId: mark.jobId ?? '',
      rank: mark.rank === null || mark.rank === undefined || mark.rank < 0 ? '' : String(mark.rank),
    });
    this.indexWorkerState(m, workerId, mark.state, mark.jobId);
    await m.exec().then(checkExec);
  }

  /** Keeps the idle set and the job's claim set in step with a state written in `m`. */
  private indexWorkerState(m: ChainableCommander, workerId: string, state: WorkerState, jobId: string | null | undefined): void {
    if (state === 'idle') m.sadd(this.keys.idleWorkers(), workerId).publish(this.keys.workersFreedChannel(), workerId);
    else m.srem(this.keys.idleWorkers(), workerId);
    if (state === 'busy' && jobId) m.sadd(this.keys.jobClaims(jobId), workerId);
  }

  /**
   * Adds to the idle set every registered worker whose hash says idle (a Redis written before
   * the set existed); the coordinator runs it at start. O(registered), never per claim. It
   * only adds: an entry made stale meanwhile (claimed by another coordinator) is dropped by
   * the next claim that reads it, while a delete-and-rebuild could lose a worker released
   * between the read and the write.
   */
  async indexIdleWorkers(): Promise<number> {
    const ids = await this.redis.smembers(this.keys.workers());
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(this.keys.worker(id), 'state');
    const states = checkExec(await pipe.exec()).map(([, v]) => v as string | null);
    const idle = ids.filter((_, i) => states[i] === 'idle');
    if (idle.length) await this.redis.sadd(this.keys.idleWorkers(), ...idle);
    return idle.length;
  }

  /**
   * Atomically claims `count` alive workers for a job (idle ones, or ones already
   * claimed for this job), marking them busy with their rank. All or nothing: returns
   * the worker ids in rank order, or null when too few are available.
   */
  async claimWorkers(jobId: string, count: number): Promise<string[] | null> {
    return this.claimWorkersBetween(jobId, count, count);
  }

  /**
   * Elastic jobs: atomically claims as many alive workers as are free, at most `max`, skipping
   * `exclude` (its blacklist); null (nothing claimed) when fewer than `min` are.
   */
  async claimWorkersBetween(jobId: string, min: number, max: number, exclude: string[] = []): Promise<string[] | null> {
    // The script declares every key it touches, so the candidates are read first (the job's
    // claim set and the idle set, not the registry) and the script re-checks each of them.
    const [[, claimed], [, idle]] = checkExec(await this.redis.multi()
      .smembers(this.keys.jobClaims(jobId)).smembers(this.keys.idleWorkers()).exec()) as [unknown, string[]][];
    const skip = new Set(exclude);
    const candidates = [...new Set([...claimed, ...idle])].filter((id) => !skip.has(id)).sort();
    if (candidates.length < Math.max(1, min)) return null;
    const keys = [this.keys.workers(), this.keys.idleWorkers(), this.keys.jobClaims(jobId), ...candidates.flatMap((id) => [this.keys.worker(id), this.keys.alive(id)])];
    const ids = (await this.redis.eval(CLAIM_WORKERS, keys.length, ...keys, jobId, String(min), String(max), ...candidates)) as string[];
    return ids.length >= min && ids.length > 0 ? ids : null;
  }

  /** Sets idle those of the workers that still hold jobId; returns how many. */
  async releaseWorkers(jobId: string, workerIds: string[]): Promise<number> {
    if (!workerIds.length) return 0;
    const keys = [this.keys.idleWorkers(), this.keys.jobClaims(jobId), ...workerIds.map((id) => this.keys.worker(id))];
    return (await this.redis.eval(RELEASE_WORKERS, keys.length, ...keys, jobId, this.keys.workersFreedChannel(), ...workerIds)) as number;
  }

  /**
   * Calls `onFreed` whenever a worker becomes idle or registers (markWorker, releaseWorkers,
   * registerWorker publish on the channel), so that waiting claims need not poll. `conn`
   * becomes a subscriber: give it a connection of its own. Returns the unsubscribe.
   */
  async onWorkersFreed(conn: Redis, onFreed: () => void): Promise<() => Promise<void>> {
    const channel = this.keys.workersFreedChannel();
    const listener = (ch: string) => { if (ch === channel) onFreed(); };
    conn.on('message', listener);
    await conn.subscribe(channel);
    return async () => {
      conn.off('message', listener);
      await conn.unsubscribe(channel).catch(() => undefined);
    };
  }

  // ---- worker inboxes ----

  async pushCommand(workerId: string, cmd: WorkerCommand): Promise<void> {
    await this.redis.rpush(this.keys.inbox(workerId), JSON.stringify(cmd));
  }

  /**
   * `cancel`/`pause` to these members of the job's run, naming the run: a stop read late (after
   * an automatic restart or a resize) must not stop the next run of the job.
   */
  async stopRun(job: { id: string; runId?: string | null }, members: { workerId: string }[], type: 'cancel' | 'pause', reason: string, atStep?: number): Promise<void> {
    for (const m of members) await this.pushCommand(m.workerId, { type, jobId: job.id, reason, ...(job.runId ? { runId: job.runId } : {}), ...(atStep !== undefined ? { atStep } : {}) });
  }

  /**
   * BLPOP on the worker's inbox, on `conn` (a dedicated connection) or else this plane's
   * own one, which it then blocks (see the class note). timeoutSec 0 = forever.
   */
  async nextCommand(workerId: string, timeoutSec: number, conn: Redis = this.redis): Promise<WorkerCommand | null> {
    const r = await conn.blpop(this.keys.inbox(workerId), timeoutSec);
    return r ? (JSON.parse(r[1]) as WorkerCommand) : null;
  }

  /** The pending commands of a worker's inbox, without removing them. */
  async peekCommands(workerId: string): Promise<WorkerCommand[]> {
    return (await this.redis.lrange(this.keys.inbox(workerId), 0, -1)).map((s) => JSON.parse(s) as WorkerCommand);
  }

  // ---- jobs ----

  /** Records a new job as `queued`. */
  async createJob(spec: JobSpec, opts: { id?: string; totalSteps?: number; layout?: RankLayout[]; now?: number; owner?: string } = {}): Promise<JobRecord> {
    const now = opts.now ?? Date.now();
    const id = opts.id ?? newJobId(now);
    const rec: JobRecord = {
      id, spec, state: 'queued', createdAt: now, membershipEpoch: 0, attempt: 1,
      ...(opts.totalSteps !== undefined ? { totalSteps: opts.totalSteps } : {}),
      ...(opts.layout ? { layout: opts.layout } : {}),
      ...(opts.owner ? { owner: opts.owner } : {}),
    };
    const ok = await this.redis.hsetnx(this.keys.job(id), 'id', id);
    if (!ok) throw new ControlPlaneError(`job ${id} already exists; pick another id`, 'BAD_OPTIONS');
    await this.redis.multi()
      .hset(this.keys.job(id), encodeJob(rec))
      .zadd(this.keys.jobs(), now, id)
      .sadd(this.keys.jobsInState('queued'), id)
      .exec().then(checkExec);
    return rec;
  }

  async getJob(id: string): Promise<JobRecord | null> {
    return decodeJob(await this.redis.hgetall(this.keys.job(id)));
  }

  /**
   * Newest first. With a state, the ids come from that state's set (ordered by creation
   * time from the jobs sorted set), so only the page's records are read.
   */
  async listJobs(opts: { state?: JobState; limit?: number; offset?: number } = {}): Promise<JobRecord[]> {
    const offset = opts.offset ?? 0;
    const limit = opts.limit ?? 100;
    const ids = opts.state
      ? (await this.idsByCreation(await this.redis.smembers(this.keys.jobsInState(opts.state)))).slice(offset, offset + limit)
      : await this.redis.zrevrange(this.keys.jobs(), offset, offset + limit - 1);
    return this.readJobs(ids);
  }

  /** The jobs in any of the given states (from their sets, no scan of the history), newest first. */
  async jobsInStates(states: readonly JobState[]): Promise<JobRecord[]> {
    const pipe = this.redis.pipeline();
    for (const s of states) pipe.smembers(this.keys.jobsInState(s));
    const ids = checkExec(await pipe.exec()).flatMap(([, m]) => m as string[]);
    return this.readJobs(await this.idsByCreation(ids));
  }

  /** How many jobs each state's set holds (one SCARD per state). */
  async countJobsByState(): Promise<Record<JobState, number>> {
    const pipe = this.redis.pipeline();
    for (const s of JOB_STATES) pipe.scard(this.keys.jobsInState(s));
    const res = checkExec(await pipe.exec());
    return Object.fromEntries(JOB_STATES.map((s, i) => [s, Number(res[i][1])])) as Record<JobState, number>;
  }

  /**
   * Builds the state sets from the job records, unless that was done before (a marker key
   * says so) or `force`: the migration of records written before the sets existed. Reads
   * every record once, `batch` jobs per atomic step. Returns how many jobs it indexed, or
   * null when the marker was already there.
   */
  async indexJobStates(opts: { force?: boolean; batch?: number } = {}): Promise<number | null> {
    if (!opts.force && (await this.redis.exists(this.keys.jobStateIndexMarker()))) return null;
    const batch = opts.batch ?? 500;
    const setKeys = JOB_STATES.map((s) => this.keys.jobsInState(s));
    let indexed = 0;
    for (let start = 0; ; start += batch) {
      const ids = await this.redis.zrange(this.keys.jobs(), start, start + batch - 1);
      if (!ids.length) break;
      indexed += (await this.redis.eval(INDEX_JOB_STATES, setKeys.length + ids.length, ...setKeys, ...ids.map((id) => this.keys.job(id)), JOB_STATES.join(','), ...ids)) as number;
      if (ids.length < batch) break;
    }
    await this.redis.set(this.keys.jobStateIndexMarker(), String(Date.now()));
    return indexed;
  }

  private async idsByCreation(ids: string[]): Promise<string[]> {
    if (!ids.length) return [];
    const scores = await this.redis.zmscore(this.keys.jobs(), ...ids);
    return ids.map((id, i) => [id, Number(scores[i] ?? 0)] as const).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? 1 : -1)).map(([id]) => id);
  }

  private async readJobs(ids: string[]): Promise<JobRecord[]> {
    if (!ids.length) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.keys.job(id));
    return checkExec(await pipe.exec()).map(([, h]) => decodeJob(h as Record<string, string>)).filter((j): j is JobRecord => !!j);
  }

  /** The state-set keys a move to `state` touches: its own set first, then every other state's. */
  private stateSetKeys(state: JobState | null | undefined): string[] {
    if (!state) return [];
    return [state, ...JOB_STATES.filter((s) => s !== state)].map((s) => this.keys.jobsInState(s));
  }

  /** Writes the given fields; null deletes one. */
  async updateJob(id: string, patch: JobPatch): Promise<void> {
    const { set, del } = encodePatch(patch);
    const m = this.redis.multi();
    if (Object.keys(set).length) m.hset(this.keys.job(id), set);
    if (del.length) m.hdel(this.keys.job(id), ...del);
    const [target, ...others] = this.stateSetKeys(patch.state);
    if (target) {
      for (const k of others) m.srem(k, id);
      m.sadd(target, id);
    }
    await m.exec().then(checkExec);
  }

  /**
   * Compare-and-set: applies the patch (which may set `state`) only if the job's state is
   * one of `from` and, with `guard`, its record holds those values (null: the field is
   * absent). The guard is the fencing token of a scheduler acting on what it read (a run's
   * runId, the membershipEpoch it starts from): two coordinators that both believe they own
   * a job cannot both move it. Returns whether it applied and the state found.
   */
  async transitionJob(id: string, from: readonly JobState[], patch: JobPatch, guard: JobGuard = {}): Promise<{ ok: boolean; previous: JobState | null }> {
    const { set, del } = encodePatch(patch);
    const args: string[] = [from.join(','), id, ...guardArgs(guard)];
    for (const [k, v] of Object.entries(set)) args.push(k, v);
    for (const k of del) args.push(k, '');
    const keys = [this.keys.job(id), ...this.stateSetKeys(patch.state)];
    const [ok, prev] = (await this.redis.eval(TRANSITION_JOB, keys.length, ...keys, ...args)) as [number, string | null];
    return { ok: ok === 1, previous: (prev || null) as JobState | null };
  }

  /**
   * Atomically, if the job's state is `expected` (and it holds `guard`, as transitionJob):
   * applies the patch and pushes each command to its worker's inbox. Nothing happens
   * otherwise (e.g. cancelled meanwhile, or another coordinator's run).
   */
  async dispatchIfState(
    id: string, expected: JobState, patch: JobPatch, commands: { workerId: string; cmd: WorkerCommand }[], guard: JobGuard = {},
  ): Promise<{ ok: boolean; previous: JobState | null }> {
    const { set } = encodePatch(patch);
    const fields = Object.entries(set);
    const sets = this.stateSetKeys(patch.state);
    const keys = [this.keys.job(id), ...sets, ...commands.map((c) => this.keys.inbox(c.workerId))];
    const args: string[] = [expected, id, String(sets.length), ...guardArgs(guard), String(fields.length), ...fields.flat(), ...commands.map((c) => JSON.stringify(c.cmd))];
    const [ok, prev] = (await this.redis.eval(DISPATCH_IF_STATE, keys.length, ...keys, ...args)) as [number, string | null];
    return { ok: ok === 1, previous: (prev || null) as JobState | null };
  }

  /** Removes a job's record, its streams (metrics, events, logs) and its state-set entry; not its checkpoints. */
  async deleteJob(id: string): Promise<void> {
    const m = this.redis.multi().zrem(this.keys.jobs(), id)
      .del(this.keys.job(id), this.keys.metrics(id), this.keys.events(id), this.keys.logs(id), this.keys.jobClaims(id));
    for (const s of JOB_STATES) m.srem(this.keys.jobsInState(s), id);
    await m.exec().then(checkExec);
  }

  // ---- streams ----

  /**
   * Appends to the job's metrics stream and, in the same transaction, copies the figures
   * onto the job record (train: step/epoch/loss/accuracy/imagesPerSec; eval:
   * evalLoss/evalAccuracy), so the record always shows the latest. Rank 0 should write
   * the all-reduced figures; other ranks' entries go to the stream only.
   */
  async appendMetric(jobId: string, m: MetricEntry): Promise<string> {
    const { id: _id, ...fields } = m as MetricEntry & { id?: string };
    const multi = this.redis.multi()
      .xadd(this.keys.metrics(jobId), 'MAXLEN', '~', String(this.options.metricsMaxLen), '*', ...encodeFields(fields));
    if (m.rank === 0) {
      const p: JobPatch = m.kind === 'eval'
        ? { evalLoss: m.loss, evalAccuracy: m.accuracy }
        : {
          step: m.step, epoch: m.epoch, loss: m.loss, accuracy: m.accuracy,
          ...(m.imagesPerSec !== undefined ? { imagesPerSec: m.imagesPerSec } : {}),
          ...(m.stepsPerSec !== undefined ? { stepsPerSec: m.stepsPerSec } : {}),
        };
      multi.hset(this.keys.job(jobId), encodePatch(p).set);
    }
    const res = checkExec(await multi.exec());
    return res[0][1] as string;
  }

  /** Entries after `fromId` (exclusive; '0' = from the start), oldest first. */
  async readMetrics(jobId: string, fromId = '0', count = 1000): Promise<(MetricEntry & { id: string })[]> {
    const r = await this.redis.xrange(this.keys.metrics(jobId), exclusive(fromId), '+', 'COUNT', count);
    return r.map(([id, f]) => ({ ...(decodeFields(f) as MetricEntry), id }));
  }

  /**
   * Appends to the job's events stream. A `checkpoint` event with checkpointKey and step
   * also records it as the job's lastCheckpoint (same transaction).
   */
  async appendEvent(jobId: string, e: JobEvent): Promise<string> {
    const { id: _id, ...rest } = e;
    const ev = { ts: Date.now(), ...rest };
    const multi = this.redis.multi()
      .xadd(this.keys.events(jobId), 'MAXLEN', '~', String(this.options.eventsMaxLen), '*', ...encodeFields(ev));
    if (ev.type === 'checkpoint' && ev.checkpointKey && typeof ev.step === 'number') {
      multi.hset(this.keys.job(jobId), 'lastCheckpoint', ev.checkpointKey, 'lastCheckpointAt', String(ev.ts));
    }
    const res = checkExec(await multi.exec());
    return res[0][1] as string;
  }

  /**
   * Events after `fromId` (exclusive; '0' or '-' = from the start, '$' = only new ones),
   * each with its stream `id`. Third argument: a count, or { count, blockMs }: with
   * blockMs, waits up to that long for the first new one (XREAD BLOCK: dedicated
   * connection, see the class note).
   */
  async readEvents(jobId: string, fromId = '0', opts: number | { blockMs?: number; count?: number } = {}): Promise<JobEvent[]> {
    const o = typeof opts === 'number' ? { count: opts } : opts;
    const count = o.count ?? 1000;
    const from = fromId === '-' ? '0' : fromId;
    const r = o.blockMs !== undefined
      ? await this.redis.xread('COUNT', count, 'BLOCK', o.blockMs, 'STREAMS', this.keys.events(jobId), from)
      : await this.redis.xread('COUNT', count, 'STREAMS', this.keys.events(jobId), from);
    if (!r) return [];
    return r[0][1].map(([id, f]) => ({ ...(decodeFields(f) as JobEvent), id }));
  }

  /**
   * Appends a line to the job's log stream (XADD MAXLEN ~ logsMaxLen: Redis trims whole
   * stream nodes, so the length stays within logsMaxLen plus one node, stream-node-max-entries).
   */
  async appendLog(jobId: string, line: Omit<LogLine, 'id' | 'ts'> & { ts?: number }): Promise<string> {
    return (await this.redis.xadd(this.keys.logs(jobId), 'MAXLEN', '~', String(this.options.logsMaxLen), '*',
      'ts', String(line.ts ?? Date.now()), 'rank', String(line.rank), 'level', line.level, 'worker', line.workerId, 'msg', line.msg)) as string;
  }

  /**
   * Log lines after `after` (exclusive; '0' or '-' = from the oldest kept), oldest first, at
   * most `limit`, only rank `rank`'s when given. `next` is the cursor to continue from: the
   * last line read, or the last one skipped by the rank filter, so a filtered read never
   * rescans (it scans at most 10 × limit entries per call).
   */
  async readLogs(jobId: string, opts: { after?: string; limit?: number; rank?: number } = {}): Promise<{ lines: LogLine[]; next: string }> {
    const limit = opts.limit ?? 1000;
    let next = opts.after && opts.after !== '-' ? opts.after : '0';
    const lines: LogLine[] = [];
    for (let scanned = 0; lines.length < limit && scanned < 10 * limit;) {
      const want = opts.rank === undefined ? limit - lines.length : limit;
      const batch = await this.redis.xrange(this.keys.logs(jobId), exclusive(next), '+', 'COUNT', want);
      for (const [id, f] of batch) {
        const line = decodeLogLine(id, f);
        next = id;
        if (opts.rank === undefined || line.rank === opts.rank) lines.push(line);
        if (lines.length === limit) break;
      }
      scanned += batch.length;
      if (batch.length < want) break;
    }
    return { lines, next };
  }

  /** Id of the newest event, or '0' when there is none: a cursor for "from now on". */
  async lastEventId(jobId: string): Promise<string> {
    const r = await this.redis.xrevrange(this.keys.events(jobId), '+', '-', 'COUNT', 1);
    return r.length ? r[0][0] : '0';
  }
}

export function newJobId(now = Date.now()): string {
  return `job-${now.toString(36)}-${randomBytes(3).toString('hex')}`;
}

function exclusive(id: string): string {
  return id === '0' || id === '-' ? '-' : `(${id}`;
}

// Stream entries: one field per property, each value JSON (exact types back, any shape).
function encodeFields(o: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out.push(k, JSON.stringify(v));
  return out;
}

function decodeFields(f: string[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i < f.length; i += 2) {
    try { o[f[i]] = JSON.parse(f[i + 1]); } catch { o[f[i]] = f[i + 1]; }
  }
  return o;
}

function decodeLogLine(id: string, f: string[]): LogLine {
  const o: Record<string, string> = {};
  for (let i = 0; i < f.length; i += 2) o[f[i]] = f[i + 1];
  const level = (LOG_LEVELS as readonly string[]).includes(o.level) ? (o.level as LogLevel) : 'info';
  return { id, ts: Number(o.ts ?? 0), rank: Number(o.rank ?? -1), level, workerId: o.worker ?? '', msg: o.msg ?? '' };
}

function encodeJob(rec: JobRecord): Record<string, string> {
  return encodePatch(rec as unknown as JobPatch).set;
}

/** Fields a job record must hold for a transition to apply (its fencing token); null = absent. */
export type JobGuard = Partial<Record<'runId' | 'membershipEpoch' | 'attempt', string | number | null>>;

/** The guard as TRANSITION_JOB / DISPATCH_IF_STATE read it: a count, then field/value pairs. */
function guardArgs(guard: JobGuard): string[] {
  const pairs = Object.entries(guard).filter(([, v]) => v !== undefined);
  return [String(pairs.length), ...pairs.flatMap(([k, v]) => [k, v === null ? '' : String(v)])];
}

function encodePatch(patch: JobPatch | Record<string, unknown>): { set: Record<string, string>; del: string[] } {
  const set: Record<string, string> = {};
  const del: string[] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) del.push(k);
    else set[k] = JSON_JOB_FIELDS.has(k) ? JSON.stringify(v) : String(v);
  }
  return { set, del };
}

function decodeJob(h: Record<string, string>): JobRecord | null {
  if (!h || !h.id || !h.spec) return null;
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === '') continue;
    if (JSON_JOB_FIELDS.has(k)) {
      try { o[k] = JSON.parse(v); } catch { throw new ControlPlaneError(`job ${h.id}: field ${k} is not JSON`, 'BAD_RECORD'); }
    } else if (NUMERIC_JOB_FIELDS.has(k)) o[k] = Number(v);
    else o[k] = v;
  }
  o.membershipEpoch ??= 0;
  o.attempt ??= 1;
  return o as unknown as JobRecord;
}

function decodeWorker(h: Record<string, string>, alive: boolean): WorkerInfo | null {
  if (!h || !h.id) return null;
  let address: PeerAddress | null = null;
  try { address = JSON.parse(h.address ?? 'null') as PeerAddress | null; } catch { address = null; }
  return {
    id: h.id, host: h.host ?? '', pid: Number(h.pid ?? 0), backend: h.backend ?? '', device: h.device ?? '', address: address as PeerAddress,
    state: h.state === 'busy' ? 'busy' : 'idle',
    jobId: h.jobId || null,
    rank: h.rank ? Number(h.rank) : null,
    registeredAt: Number(h.registeredAt ?? 0), lastSeen: Number(h.lastSeen ?? 0), alive,
  };
}

function checkExec(res: [Error | null, unknown][] | null): [Error | null, unknown][] {
  if (!res) throw new ControlPlaneError('Redis transaction was aborted', 'BAD_RECORD');
  for (const [err] of res) if (err) throw err;
  return res;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
