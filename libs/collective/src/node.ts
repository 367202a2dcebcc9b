import { randomBytes } from 'node:crypto';
import { chmodSync, unlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { CommunicatorImpl, Frame } from './communicator';
import { CollectiveError } from './errors';
import { decodeHeader, hashRunId, Header } from './header';
import { hostId, primaryIPv4 } from './host-id';
import { checkJoinCurve, CurveMode, curveModeFromEnv, keyBytes, newCurveKeyPair } from './curve';
import { dataContext, pullOptions, zmqKey } from './socket-options';
import { addGate, CurveGate, Refusal, RefusalReason, removeGate } from './zap';
import { route } from './communicator';
import { Communicator, FrameType, JoinOptions, ListenOptions, PeerAddress } from './types';
import { DEFAULT_MINOR_GC_BYTES, YoungCollector } from './young-gc';

// 2 MB pieces: against 1 MB, 8-12% less CPU and 4-10% less time at 16 MB, world size 2 (fewer
// frames, each with zeromq.js' per-message cost), the same at 4 MB; 512 KB pieces cost more
const DEFAULTS = { timeoutMs: 60_000, pieceElements: 524_288 };
/** Frames for an epoch not joined yet are kept, up to this many (a fast peer may start first). */
const MAX_PENDING = 100_000;
/** A CURVE connection with an unknown key waits this long for a join listing it (a peer's join may come first). */
const DEFAULT_CURVE_HOLD_MS = 60_000;

export interface NodeStats {
  /** Frames of an epoch older than the newest joined for their run, dropped. */
  staleDropped: number;
  /** Frames that are not ours (bad magic/version), dropped. */
  foreignDropped: number;
  /**
   * Connections refused by CURVE: `unknown-key` (a key of no epoch joined here), `stale-key`
   * (a key of an epoch that ended here), `handshake` (no CURVE, or not our server key).
   */
  refused: Record<RefusalReason, number>;
}

/** The receiving sockets of a node: one per security mechanism its endpoints use. */
interface Receivers {
  sockets: zmq.Pull[];
  gate: CurveGate | null;
  domain: string | null;
}

/**
 * One per worker process: binds a PULL socket (tcp and ipc) once, runs the single receive
 * loop, and hands frames to the communicator of their (run, epoch).
 */
export class CollectiveNode {
  readonly stats: NodeStats;
  private readonly comms = new Map<string, CommunicatorImpl>();
  private readonly newestEpoch = new Map<number, number>();
  private readonly pending = new Map<string, Frame[]>();
  private pendingCount = 0;
  private closed = false;
  private readonly loops: Promise<void>[];

  private constructor(
    private readonly rx: Receivers,
    readonly address: PeerAddress,
    private readonly ipcPath: string | null,
    private readonly young: YoungCollector,
    stats: NodeStats,
  ) {
    this.stats = stats;
    this.loops = rx.sockets.map((s) => this.receive(s));
  }

  static async listen(opts: ListenOptions = {}): Promise<CollectiveNode> {
    const o = { host: process.env.FLEET_COLLECTIVE_HOST ?? '0.0.0.0', port: 0, ipc: true, minorGcEveryBytes: DEFAULT_MINOR_GC_BYTES, curveHoldMs: DEFAULT_CURVE_HOLD_MS, ...opts };
    if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new RangeError(`port must be 0..65535, got ${o.port}`);
    if (!(o.minorGcEveryBytes >= 0)) throw new RangeError(`minorGcEveryBytes must be >= 0 (0 turns it off), got ${o.minorGcEveryBytes}`);
    if (!(o.curveHoldMs > 0)) throw new RangeError(`curveHoldMs must be > 0, got ${o.curveHoldMs}`);
    const mode: CurveMode = o.curve ?? curveModeFromEnv();
    if (!['tcp', 'all', 'off'].includes(mode)) throw new RangeError(`curve must be tcp, all or off, got ${o.curve}`);
    const stats: NodeStats = { staleDropped: 0, foreignDropped: 0, refused: { 'unknown-key': 0, 'stale-key': 0, handshake: 0 } };
    const refused = (r: Refusal) => {
      stats.refused[r.reason]++;
      o.onRefused?.(r);
    };
    const rx: Receivers = { sockets: [], gate: null, domain: null };
    let ipcPath: string | null = null;
    try {
      // The server key is the node's own: its secret never leaves this process, its public
      // half goes to the registry with the address, so a client knows it reached this node.
      const server = mode === 'off' ? null : newCurveKeyPair();
      let secure: zmq.Pull | null = null;
      if (server) {
        rx.domain = `tensorfleet-${process.pid}-${randomBytes(6).toString('hex')}`;
        rx.gate = new CurveGate(o.curveHoldMs, refused);
        await addGate(dataContext(), rx.domain, rx.gate);
        // zapEnforceDomain: without a ZAP handler libzmq would admit every key
        secure = new zmq.Pull({ ...pullOptions(), linger: 0, curveServer: true, curveSecretKey: zmqKey(keyBytes(server.secretKey, 'server key')), zapDomain: rx.domain, zapEnforceDomain: true });
        // a client without CURVE, or one expecting another server key (the ZAP refusals are counted by the gate)
        secure.events.on('handshake:error:protocol', (e) => refused({ reason: 'handshake', address: e.address, detail: e.error.message }));
        rx.sockets.push(secure);
      }
      const plain = mode !== 'all' ? new zmq.Pull({ ...pullOptions(), linger: 0 }) : null;
      if (plain && (mode === 'off' || o.ipc)) rx.sockets.push(plain);
      else plain?.close();
      const tcpSocket = mode === 'off' ? plain! : secure!;
      await tcpSocket.bind(`tcp://${o.host}:${o.port === 0 ? '*' : o.port}`);
      const bound = tcpSocket.lastEndpoint!; // tcp://0.0.0.0:PORT
      const port = Number(bound.slice(bound.lastIndexOf(':') + 1));
      const wildcard = o.host === '0.0.0.0' || o.host === '*' || o.host === '::';
      const adv = o.advertiseHost ?? (wildcard ? primaryIPv4() : o.host);
      if (o.ipc) {
        ipcPath = path.join(os.tmpdir(), `tf-coll-${process.pid}-${randomBytes(4).toString('hex')}.sock`);
        await (mode === 'all' ? secure! : plain!).bind(`ipc://${ipcPath}`);
        // connecting to a unix socket needs write permission on it: the owner's processes only
        chmodSync(ipcPath, 0o600);
      }
      const address: PeerAddress = {
        hostId: hostId(),
        tcp: `tcp://${adv}:${port}`,
        ipc: ipcPath ? `ipc://${ipcPath}` : null,
        ...(server ? { curve: { key: server.publicKey, mode: mode as 'tcp' | 'all' } } : {}),
      };
      return new CollectiveNode(rx, address, ipcPath, new YoungCollector(o.minorGcEveryBytes), stats);
    } catch (err) {
      for (const s of rx.sockets) s.close();
      if (rx.domain) await removeGate(dataContext(), rx.domain);
      throw err;
    }
  }

  /** Forms the communicator of one membership epoch; resolves once every rank has greeted. */
  async join(opts: JoinOptions): Promise<Communicator> {
    if (this.closed) throw new CollectiveError('CLOSED', [], 'node closed; listen again');
    const o = { ...DEFAULTS, ...opts };
    if (!o.runId) throw new TypeError('join: runId is required');
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1 || o.worldSize > 65535) throw new RangeError(`join: worldSize must be 1..65535, got ${o.worldSize}`);
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) throw new RangeError(`join: rank must be in [0, ${o.worldSize}), got ${o.rank}`);
    if (!Number.isInteger(o.epoch) || o.epoch < 0 || o.epoch > 0xffffffff) throw new RangeError(`join: epoch must be a uint32, got ${o.epoch}`);
    if (!Array.isArray(o.peers) || o.peers.length !== o.worldSize) throw new RangeError(`join: peers must list ${o.worldSize} addresses (one per rank), got ${o.peers?.length}`);
    if (!(o.timeoutMs > 0)) throw new RangeError(`join: timeoutMs must be > 0, got ${o.timeoutMs}`);
    if (!Number.isInteger(o.pieceElements) || o.pieceElements < 1) throw new RangeError(`join: pieceElements must be a positive integer`);
    const runHash = hashRunId(o.runId);
    const newest = this.newestEpoch.get(runHash);
    if (newest !== undefined && o.epoch <= newest) {
      throw new CollectiveError('EPOCH_MISMATCH', [o.rank], `epoch ${o.epoch} of run ${o.runId} is not newer than epoch ${newest} already joined here`);
    }
    if (o.curve) checkJoinCurve(o.curve, o.worldSize, o.rank);
    else {
      const demanding = o.peers.findIndex((p, r) => r !== o.rank && route(this.address, p).curve);
      if (demanding >= 0) {
        throw new TypeError(`join: rank ${demanding}'s endpoint ${route(this.address, o.peers[demanding]).endpoint} demands CURVE; pass curve (this epoch's keys, from the assignment), or listen with curve: 'off' (FLEET_COLLECTIVE_CURVE=0) on every node`);
      }
    }
    this.newestEpoch.set(runHash, o.epoch);
    const key = `${runHash}:${o.epoch}`;
    // the peers' keys are admitted while this epoch lasts; a key of an ended epoch is refused
    const admitted = o.curve && this.rx.gate ? o.curve.peerKeys.filter((_, r) => r !== o.rank) : [];
    this.rx.gate?.admit(admitted);
    const comm = new CommunicatorImpl({
      ...o,
      runHash,
      self: this.address,
      young: this.young,
      onClosed: () => {
        this.comms.delete(key);
        this.rx.gate?.revoke(admitted);
      },
    });
    this.comms.set(key, comm);
    let newer: Frame | null = null;
    for (const [k, frames] of this.pending) {
      const [rh, ep] = k.split(':').map(Number);
      if (rh === runHash && ep > o.epoch) newer ??= frames.find((f) => f.h.type === FrameType.Hello) ?? null;
      if (rh !== runHash || ep > o.epoch) continue;
      this.pending.delete(k);
      this.pendingCount -= frames.length;
      if (ep === o.epoch) for (const f of frames) comm.deliver(f.h, f.p);
      else this.stats.staleDropped += frames.length;
    }
    try {
      const joined = comm.handshake();
      if (newer) comm.newerEpochSeen(newer.h.src, newer.h.epoch);
      await joined;
    } catch (err) {
      await comm.close();
      throw err;
    }
    return comm;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.comms.values()].map((c) => c.close()));
    this.rx.gate?.close();
    for (const s of this.rx.sockets) s.close();
    await Promise.all(this.loops.map((l) => l.catch(() => undefined)));
    if (this.rx.domain) await removeGate(dataContext(), this.rx.domain);
    if (this.ipcPath) {
      try {
        unlinkSync(this.ipcPath);
      } catch {
        // ZeroMQ may have removed it already
      }
    }
  }

  private async receive(pull: zmq.Pull): Promise<void> {
    try {
      for await (const [head, payload] of pull) {
        if (payload) this.young.received(payload.length);
        const h = decodeHeader(head);
        if (!h) {
          this.stats.foreignDropped++;
          continue;
        }
        this.dispatch(h, payload);
      }
    } catch (err) {
      if (!this.closed) throw err;
    }
  }

  private dispatch(h: Header, p: Buffer | undefined): void {
    const key = `${h.runHash}:${h.epoch}`;
    const comm = this.comms.get(key);
    if (comm) return comm.deliver(h, p);
    const newest = this.newestEpoch.get(h.runHash);
    if (newest !== undefined && h.epoch <= newest) {
      this.stats.staleDropped++; // an older epoch, or one already closed here
      return;
    }
    if (h.type === FrameType.Hello) {
      for (const c of this.comms.values()) if (c.runHash === h.runHash && c.epoch < h.epoch) c.newerEpochSeen(h.src, h.epoch);
    }
    if (this.pendingCount >= MAX_PENDING) return;
    const q = this.pending.get(key);
    if (q) q.push({ h, p });
    else this.pending.set(key, [{ h, p }]);
    this.pendingCount++;
  }
}
