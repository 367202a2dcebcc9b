import { Redis } from 'ioredis';
import { ControlPlane, type Assignment, type WorkerCommand } from '@tensorfleet/control';

export interface SimulatedFleetOptions {
  redisUrl: string;
  prefix: string;
  /** Heartbeat period; the alive key lives three periods, as FleetWorker sets it. Default 2000. */
  heartbeatMs?: number;
  /** Time of one simulated training step (± 20 %). Default 250 ms. */
  stepMs?: number;
  /** Connections that carry the inbox reads (BLPOP on many inboxes each). Default 16. */
  inboxConnections?: number;
  /** How long a survivor takes to notice a dead peer (the collective's deadline). Default 2000. */
  peerLostMs?: number;
  /** Called when a rank receives an assignment (the bench times scheduling with it). */
  onAssign?: (workerId: string, a: Assignment, at: number) => void;
  /** Called when a worker becomes idle in Redis (registered, or done with a run). */
  onIdle?: (workerId: string, at: number) => void;
}

interface SimWorker {
  id: string;
  dead: boolean;
  idle: boolean;
  queue: Assignment[];
  current: Assignment | null;
  stop: 'cancel' | 'pause' | null;
  /** Set when a peer of the current run died: the rank fails with PEER_LOST at that time. */
  peerLostAt: number | null;
}

/**
 * Many workers in this process that do what FleetWorker does against Redis, without
 * training: register, heartbeat (same period and TTL), read their inboxes, mark themselves
 * busy, append rank-started, a metric per step from rank 0, rank-completed (or rank-failed
 * with PEER_LOST when a peer died), then mark themselves idle. What differs from real
 * workers is only how the connections are shared: a real worker holds three (commands, a
 * blocking inbox read, the heartbeat thread's); here one connection carries every
 * worker's commands, one every heartbeat, and `inboxConnections` carry the inbox reads,
 * each a BLPOP over its share of the inboxes (BLPOP takes many keys and pops from the
 * first non-empty one), so 1,000 workers need 18 connections rather than 3,000.
 */
export class SimulatedFleet {
  readonly workers = new Map<string, SimWorker>();
  private readonly redis: Redis;
  private readonly beatConn: Redis;
  private readonly inboxConns: Redis[] = [];
  private readonly control: ControlPlane;
  private readonly beatControl: ControlPlane;
  private readonly o: Required<Omit<SimulatedFleetOptions, 'onAssign' | 'onIdle'>> & Pick<SimulatedFleetOptions, 'onAssign' | 'onIdle'>;
  private closing = false;
  private timers: NodeJS.Timeout[] = [];
  private loops: Promise<void>[] = [];
  private next = 0;
  /** Commands the simulated workers issued (not counting heartbeats and inbox reads). */
  commands = 0;
  errors: string[] = [];

  constructor(opts: SimulatedFleetOptions) {
    this.o = { heartbeatMs: 2000, stepMs: 250, inboxConnections: 16, peerLostMs: 2000, ...opts };
    this.redis = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
    this.beatConn = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1 });
    this.control = new ControlPlane(this.redis, { prefix: opts.prefix });
    this.beatControl = new ControlPlane(this.beatConn, { prefix: opts.prefix });
    for (let i = 0; i < this.o.inboxConnections; i++) this.inboxConns.push(new Redis(opts.redisUrl, { maxRetriesPerRequest: null }));
  }

  /** Registers `n` new workers (ids sim-0, sim-1, ...), heartbeats staggered over a period. */
  async join(n: number): Promise<string[]> {
    const ids: string[] = [];
    const batch: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const id = `sim-${this.next++}`;
      ids.push(id);
      const w: SimWorker = { id, dead: false, idle: false, queue: [], current: null, stop: null, peerLostAt: null };
      this.workers.set(id, w);
      batch.push(this.register(w));
      if (batch.length >= 100) await Promise.all(batch.splice(0));
    }
    await Promise.all(batch);
    if (this.loops.length === 0) this.startLoops();
    else await this.wakeInboxReaders(ids);
    return ids;
  }

  /** A worker dies as a killed process does: no more heartbeats, inbox reads or events. */
  kill(id: string): Assignment | null {
    const w = this.workers.get(id);
    if (!w || w.dead) return null;
    w.dead = true;
    const run = w.current;
    if (run) {
      // Its peers notice through the collective's deadline, as real survivors do.
      for (const peerId of run.workers ?? []) {
        const p = this.workers.get(peerId);
        if (p && !p.dead && p.current?.runId === run.runId) p.peerLostAt = Date.now() + this.o.peerLostMs;
      }
    }
    return run;
  }

  alive(): SimWorker[] {
    return [...this.workers.values()].filter((w) => !w.dead);
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const t of this.timers) clearInterval(t);
    // Unregister the living ones (FleetWorker.close does), then drop the connections.
    await Promise.all(this.alive().map((w) => this.control.unregisterWorker(w.id).catch(() => undefined)));
    for (const c of this.inboxConns) c.disconnect();
    await Promise.race([Promise.allSettled(this.loops), new Promise((r) => setTimeout(r, 2000))]);
    this.beatConn.disconnect();
    await this.redis.quit().catch(() => undefined);
  }

  private async register(w: SimWorker): Promise<void> {
    await this.control.registerWorker({
      id: w.id, host: `sim-host-${Math.floor(Number(w.id.slice(4)) / 8)}`, pid: process.pid, backend: 'sim', device: 'gpu',
      address: { hostId: `sim-host-${Math.floor(Number(w.id.slice(4)) / 8)}`, tcp: `tcp://10.0.0.1:${20000 + Number(w.id.slice(4))}`, ipc: null },
    }, { ttlMs: this.o.heartbeatMs * 3 });
    this.commands++;
    w.idle = true;
    this.o.onIdle?.(w.id, Date.now());
  }

  private startLoops(): void {
    // Heartbeats: each worker every heartbeatMs, spread over the period (real workers start at random times).
    const slices = 20;
    let slice = 0;
    this.timers.push(setInterval(() => {
      const s = slice++ % slices;
      for (const w of this.workers.values()) {
        if (w.dead || Number(w.id.slice(4)) % slices !== s) continue;
        this.beatControl.heartbeat(w.id, this.o.heartbeatMs * 3)
          .then((ok) => { if (!ok && !w.dead && !this.closing) return this.register(w); })
          .catch((e) => this.error(`heartbeat ${w.id}: ${(e as Error).message}`));
      }
    }, this.o.heartbeatMs / slices));
    for (let i = 0; i < this.inboxConns.length; i++) this.loops.push(this.readInboxes(i));
    this.timers.push(setInterval(() => this.tick(), Math.max(20, Math.round(this.o.stepMs / 5))));
  }

  /**
   * A BLPOP in flight reads the inboxes it was given: a worker that joins meanwhile (churn) is
   * registered, idle and claimable at once, but its inbox would be read only when that BLPOP
   * returns, up to its 1 s timeout later (a real worker reads its own inbox right after it
   * registers). So a join pushes to the wake key of the connection that reads the new inbox,
   * and that connection's BLPOP returns and starts again with the new inbox in its keys.
   */
  private async wakeInboxReaders(ids: string[]): Promise<void> {
    const n = this.inboxConns.length;
    const conns = new Set(ids.map((id) => Number(id.slice(4)) % n));
    await Promise.all([...conns].map((i) => this.redis.rpush(this.wakeKey(i), '1')));
  }

  private wakeKey(i: number): string {
    return `${this.control.keys.prefix}sim:inbox-wake:${i}`;
  }

  /** BLPOP over the inboxes of the living workers that hash to connection `i` (and its wake key), 1 s timeout like FleetWorker. */
  private async readInboxes(i: number): Promise<void> {
    const conn = this.inboxConns[i];
    const n = this.inboxConns.length;
    const wake = this.wakeKey(i);
    while (!this.closing) {
      const keys = this.alive().filter((w) => Number(w.id.slice(4)) % n === i).map((w) => this.control.keys.inbox(w.id));
      if (!keys.length) {
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      keys.push(wake);
      let r: [string, string] | null;
      try {
        r = await conn.blpop(...keys, 1);
      } catch (e) {
        if (this.closing) return;
        this.error(`inbox read: ${(e as Error).message}`);
        await new Promise((res) => setTimeout(res, 200));
        continue;
      }
      if (!r || r[0] === wake) continue;
      const id = r[0].slice(this.control.keys.prefix.length + 'worker:'.length, -':inbox'.length);
      const w = this.workers.get(id);
      if (!w || w.dead) continue;
      this.onCommand(w, JSON.parse(r[1]) as WorkerCommand);
    }
  }

  private onCommand(w: SimWorker, cmd: WorkerCommand): void {
    if (cmd.type === 'assign') {
      w.idle = false;
      this.o.onAssign?.(w.id, cmd.assignment, Date.now());
      w.queue.push(cmd.assignment);
      return;
    }
    if (w.current?.jobId === cmd.jobId) w.stop = cmd.type;
    const before = w.queue.length;
    if (cmd.type === 'cancel') w.queue = w.queue.filter((a) => a.jobId !== cmd.jobId);
    if (w.queue.length < before && w.queue.length === 0 && !w.current) {
      this.commands++;
      void this.control.releaseWorkers(cmd.jobId, [w.id]).catch((e) => this.error(`release ${w.id}: ${(e as Error).message}`));
    }
  }

  /** Starts queued runs; runs themselves advance in runRank. */
  private tick(): void {
    for (const w of this.workers.values()) {
      if (w.dead || w.current || !w.queue.length) continue;
      const a = w.queue.shift()!;
      w.current = a;
      w.idle = false;
      void this.runRank(w, a).finally(() => { w.current = null; w.stop = null; w.peerLostAt = null; });
    }
  }

  private async runRank(w: SimWorker, a: Assignment): Promise<void> {
    const base = { rank: a.rank, workerId: w.id, runId: a.runId };
    const c = this.control;
    try {
      this.commands += 2;
      await c.markWorker(w.id, { state: 'busy', jobId: a.jobId, rank: a.rank });
      await c.appendEvent(a.jobId, { type: 'rank-started', ...base, step: a.resume?.step ?? 0 });
      const total = a.spec.steps ?? 20;
      let step = a.resume?.step ?? 0;
      while (step < total) {
        await new Promise((r) => setTimeout(r, this.o.stepMs * (0.8 + 0.4 * Math.random())));
        if (w.dead || this.closing) return;
        if (w.peerLostAt !== null && Date.now() >= w.peerLostAt) {
          this.commands++;
          await c.appendEvent(a.jobId, { type: 'rank-failed', ...base, message: 'PEER_LOST: a peer of the ring closed its connection (simulated)' });
          return;
        }
        step++;
        if (a.rank === 0) {
          this.commands++;
          await c.appendMetric(a.jobId, { kind: 'train', step, epoch: 0, loss: 2 / Math.sqrt(step), accuracy: 0.5, lr: 0.1, imagesPerSec: 400 * a.worldSize, rank: 0, ts: Date.now() });
        }
        if (w.stop) break;
      }
      const type = w.stop === 'cancel' ? 'rank-cancelled' : w.stop === 'pause' ? 'rank-paused' : 'rank-completed';
      this.commands++;
      await c.appendEvent(a.jobId, { type, ...base, step });
    } catch (e) {
      this.error(`run ${a.jobId} rank ${a.rank}: ${(e as Error).message}`);
    } finally {
      if (!w.dead && !this.closing) {
        this.commands++;
        await c.markWorker(w.id, { state: 'idle', jobId: '', rank: -1 }).catch(() => undefined);
        if (!w.queue.length) {
          w.idle = true;
          this.o.onIdle?.(w.id, Date.now());
        }
      }
    }
  }

  private error(msg: string): void {
    if (this.errors.length < 50) this.errors.push(msg);
  }
}
