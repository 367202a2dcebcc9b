import { hostname } from 'node:os';
import type Redis from 'ioredis';
import { ControlPlane, logRedisConnection, openRedis, waitForRedis, type Assignment, type WorkerCommand } from '@tensorfleet/control';
import { CollectiveError, CollectiveNode, type Refusal } from '@tensorfleet/collective';
import { ObjectStore } from '@tensorfleet/data';
import { initBackend, type BackendInfo } from '@tensorfleet/models';
import { SurvivorMemory } from '@tensorfleet/training';
import { JobLog } from './job-log';
import type { WorkerConfig } from './config';
import { HeartbeatThread } from './heartbeat-thread';
import { runAssignment } from './training-run';

/**
 * One worker process: picks a compute backend, binds its collective socket, registers in
 * Redis with a heartbeat, and runs the assignments the coordinator pushes to its inbox,
 * one at a time. Cancel and pause commands for the running job arrive on the same inbox
 * while a run is in progress.
 */
export class FleetWorker {
  private redis!: Redis;
  private inbox!: Redis;
  private control!: ControlPlane;
  private node!: CollectiveNode;
  private store!: ObjectStore;
  private backend!: BackendInfo;
  private heartbeat?: HeartbeatThread;
  private closing = false;
  private queue: Assignment[] = [];
  /**
   * Stop requests by `jobId/runId` (`jobId/*` for one that names no run). Keyed by run, so
   * that a stop for the next run of a job, read while this worker still finishes the previous
   * one, is neither taken by the previous run nor dropped when it ends.
   */
  /** Stop requests by job and run; a pause may wait for its step (`atStep`). */
  private stops = new Map<string, { type: 'cancel' | 'pause'; atStep?: number }>();
  private wake?: () => void;
  private runs = 0;
  private current: Assignment | null = null;
  private reregistering = false;
  private readonly refusalLoggedAt = new Map<string, number>();
  /** The state of the last run that stopped here (a lost peer, a cancel), kept for the job's restart. */
  private readonly memory = new SurvivorMemory();

  constructor(private readonly cfg: WorkerConfig, private readonly log: (msg: string) => void = defaultLog(cfg.workerId)) {}

  async start(): Promise<void> {
    this.backend = await initBackend({ backend: this.cfg.backend });
    this.log(`backend ${this.backend.name} (${this.backend.device}, ${this.backend.package})`);
    this.redis = openRedis(this.cfg.redisUrl, this.cfg.redisTls, 'main', this.log, { maxRetriesPerRequest: null });
    // A wrong password or CA ends the worker here, saying what to set, instead of retrying forever.
    await waitForRedis(this.redis, this.cfg.redisUrl).catch((e) => {
      this.redis.disconnect();
      throw e;
    });
    this.inbox = logRedisConnection(this.redis.duplicate(), 'inbox', this.log, this.cfg.redisUrl);
    this.control = new ControlPlane(this.redis, { prefix: this.cfg.prefix });
    this.store = new ObjectStore(this.cfg.s3);
    this.node = await CollectiveNode.listen({ host: this.cfg.bindHost, curve: this.cfg.collectiveCurve, onRefused: (r) => this.logRefusal(r) });
    await this.register();
    this.heartbeat = new HeartbeatThread({
      redisUrl: this.cfg.redisUrl,
      redisTls: this.cfg.redisTls,
      prefix: this.cfg.prefix,
      workerId: this.cfg.workerId,
      intervalMs: this.cfg.heartbeatMs,
      ttlMs: this.cfg.heartbeatMs * 3,
    }, () => void this.reregister());
    this.log(`registered as ${this.cfg.workerId}, collective at ${JSON.stringify(this.node.address)}`);
    void this.readInbox();
  }

  private async register(): Promise<void> {
    await this.control.registerWorker({
      id: this.cfg.workerId,
      host: hostname(),
      pid: process.pid,
      backend: this.backend.name,
      device: this.backend.device,
      address: this.node.address,
    }, {
      ttlMs: this.cfg.heartbeatMs * 3,
      // A run still in progress keeps the worker busy, so it is not claimed twice.
      busy: this.current ? { jobId: this.current.jobId, rank: this.current.rank } : undefined,
    });
  }

  /**
   * A connection to the collective socket refused by CURVE (a foreign process, or a peer of an
   * ended epoch): logged with the node's counts, at most once per 10 s per reason so a peer
   * retrying cannot flood the log.
   */
  private logRefusal(r: Refusal): void {
    const now = Date.now();
    if (now - (this.refusalLoggedAt.get(r.reason) ?? 0) < 10_000) return;
    this.refusalLoggedAt.set(r.reason, now);
    const counts = Object.entries(this.node.stats.refused).map(([k, n]) => `${k} ${n}`).join(', ');
    this.log(`collective: refused a connection from ${r.address} (${r.reason}: ${r.detail}); refused so far: ${counts}`);
  }

  /** The registry forgot this worker (lost too long, or Redis flushed): join it again. */
  private async reregister(): Promise<void> {
    if (this.closing || this.reregistering) return;
    this.reregistering = true;
    try {
      this.log('the registry no longer lists this worker (forgotten after a long loss?); registering again');
      await this.register();
    } catch (e) {
      this.log(`registering again failed (${(e as Error).message}); the next heartbeat retries`);
    } finally {
      this.reregistering = false;
    }
  }

  /** Serves assignments until closed (or until `maxRuns` runs are done). */
  async serve(): Promise<void> {
    while (!this.closing) {
      const a = this.queue.shift();
      if (!a) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        continue;
      }
      this.current = a;
      await this.execute(a).finally(() => (this.current = null));
      if (this.cfg.maxRuns > 0 && ++this.runs >= this.cfg.maxRuns) break;
    }
  }

  private async execute(a: Assignment): Promise<void> {
    const base = { rank: a.rank, workerId: this.cfg.workerId, runId: a.runId };
    // The run's lines also go to the job's log stream (fleet logs), trimmed to FLEET_LOG_MAXLEN; the
    // worker's own lines stay on stdout only.
    const logs = new ControlPlane(this.redis, { prefix: this.cfg.prefix, logsMaxLen: this.cfg.logsMaxLen });
    const log = new JobLog(logs, { jobId: a.jobId, rank: a.rank, workerId: this.cfg.workerId }, this.log);
    await this.control.markWorker(this.cfg.workerId, { state: 'busy', jobId: a.jobId, rank: a.rank });
    try {
      const outcome = await runAssignment(
        {
          workerId: this.cfg.workerId,
          control: this.control,
          store: this.store,
          node: this.node,
          collectiveTimeoutMs: this.cfg.collectiveTimeoutMs,
          stopRequested: (step) => this.stopFor(a, step),
          log: log.info,
          memory: this.memory,
          sampleLogDir: this.cfg.sampleLogDir,
        },
        a,
      );
      const type = outcome.status === 'completed' ? 'rank-completed' : outcome.status === 'paused' ? 'rank-paused' : 'rank-cancelled';
      await this.control.appendEvent(a.jobId, { type, ...base, step: outcome.step, weightsHash: outcome.weightsHash, checkpointKey: outcome.checkpointKey, ...this.held(a) });
      log.info(`job ${a.jobId}: ${outcome.status} at step ${outcome.step}${outcome.evalAccuracy !== undefined ? `, held-out accuracy ${(outcome.evalAccuracy * 100).toFixed(1)}%` : ''}`);
    } catch (e) {
      const err = e as Error;
      log.error(`job ${a.jobId}: rank ${a.rank} failed: ${err.stack ?? err.message}`);
      await this.control.appendEvent(a.jobId, { type: 'rank-failed', ...base, message: describeFailure(err, a), ...this.held(a) }).catch(() => undefined);
    } finally {
      if (log.lost > 0) this.log(`job ${a.jobId}: ${log.lost} log lines of this run could not be stored in Redis`);
      this.stops.delete(stopKey(a.jobId, a.runId));
      this.stops.delete(stopKey(a.jobId));
      await this.control.markWorker(this.cfg.workerId, { state: 'idle', jobId: '', rank: -1 }).catch(() => undefined);
    }
  }

  /** `heldStep` for a stop event: the step this process keeps in memory for the job's restart (the coordinator names it). */
  private held(a: Assignment): { heldStep?: number } {
    const step = this.memory.heldStep(a.jobId);
    return step === undefined ? {} : { heldStep: step };
  }

  private async readInbox(): Promise<void> {
    while (!this.closing) {
      let cmd: WorkerCommand | null;
      try {
        cmd = await this.control.nextCommand(this.cfg.workerId, 1, this.inbox);
      } catch (e) {
        if (this.closing) return;
        this.log(`inbox read failed (${(e as Error).message}); retrying`);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!cmd) continue;
      if (cmd.type === 'assign') {
        const stale = this.current;
        if (stale && stale.jobId === cmd.assignment.jobId && stale.runId !== cmd.assignment.runId) {
          // The coordinator restarted the job (it read this worker or a peer as lost): the run
          // still going here is over, and its peers may be in the new one already.
          this.log(`job ${stale.jobId}: a new run ${cmd.assignment.runId} is assigned; stopping run ${stale.runId}`);
          this.stops.set(stopKey(stale.jobId, stale.runId), { type: 'cancel' });
        }
        this.queue.push(cmd.assignment);
        this.wake?.();
      } else if (cmd.type === 'cancel' || cmd.type === 'pause') {
        this.stops.set(stopKey(cmd.jobId, cmd.runId), { type: cmd.type, ...(cmd.atStep !== undefined ? { atStep: cmd.atStep } : {}) });
        const before = this.queue.length;
        this.queue = this.queue.filter((q) => q.jobId !== cmd!.jobId || cmd!.type !== 'cancel' || (cmd!.runId !== undefined && q.runId !== cmd!.runId));
        // The coordinator's claim marked this worker busy; a dropped assignment must free it, unless
        // a newer claim (another job) already holds it.
        if (this.queue.length < before && this.queue.length === 0 && this.current === null) {
          await this.control.releaseWorkers(cmd.jobId, [this.cfg.workerId]).catch(() => undefined);
        }
      }
    }
  }

  /**
   * Whether to stop after `step`: a stop for this run, or for the job without a run named (one
   * naming another run of it is not ours); a pause at a step, once the run has reached it (the
   * assignment's pauseAtStep, or a pause command's atStep).
   */
  private stopFor(a: Assignment, step: number): 'cancel' | 'pause' | null {
    const s = this.stops.get(stopKey(a.jobId, a.runId)) ?? this.stops.get(stopKey(a.jobId));
    if (s && (s.atStep === undefined || step >= s.atStep)) return s.type;
    return a.pauseAtStep !== undefined && step >= a.pauseAtStep ? 'pause' : null;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.wake?.();
    await this.heartbeat?.stop();
    await this.control?.unregisterWorker(this.cfg.workerId).catch(() => undefined);
    this.inbox?.disconnect();
    await this.redis?.quit().catch(() => undefined);
    await this.node?.close();
  }
}

function stopKey(jobId: string, runId?: string): string {
  return `${jobId}/${runId ?? '*'}`;
}

/** The error's message, with the workers behind the ranks a collective error names (ranks alone say little in a log). */
export function describeFailure(err: Error, a: Pick<Assignment, 'workers'>): string {
  if (!(err instanceof CollectiveError) || !a.workers || err.ranks.length === 0) return err.message;
  const who = err.ranks.map((r) => `rank ${r} = worker ${a.workers![r] ?? '?'}`).join(', ');
  return `${err.message} [${who}]`;
}

function defaultLog(id: string) {
  return (msg: string) => console.log(`${new Date().toISOString()} [worker ${id}] ${msg}`);
}
