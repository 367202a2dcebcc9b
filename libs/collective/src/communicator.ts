import { ackKey, ChannelApi, dataKey, Frame, groupKey, OpCtx, p2pKey } from './channel';
import { CollectiveError, CollectiveErrorCode } from './errors';
import { encodeHeader, Header } from './header';
import { Payload, PeerLink } from './peer-link';
import { checkMembers, groupId, SubCommunicator } from './subgroup';
import { YoungCollector } from './young-gc';
import { JoinCurve, keyBytes } from './curve';
import { CollectiveEvent, Communicator, FrameType, OpKind, PeerAddress, WireType } from './types';

export { Frame, OpCtx } from './channel';

interface Waiter {
  from: number;
  ctx: OpCtx | null;
  resolve: (f: Frame) => void;
  reject: (e: unknown) => void;
}

export interface CommSettings {
  runId: string;
  runHash: number;
  epoch: number;
  rank: number;
  worldSize: number;
  peers: PeerAddress[];
  self: PeerAddress;
  timeoutMs: number;
  pieceElements: number;
  onEvent?: (e: CollectiveEvent) => void;
  onClosed: () => void;
  /** The node's collector of received frames, run between operations. */
  young?: YoungCollector;
  /** This epoch's CURVE keys; node.join checked that every peer demanding CURVE has them. */
  curve?: JoinCurve;
}

/** The endpoint a rank dials to reach `peer`, and whether it demands CURVE there. */
export function route(self: PeerAddress, peer: PeerAddress): { endpoint: string; curve: boolean } {
  const ipc = peer.hostId === self.hostId && peer.ipc ? peer.ipc : null;
  return { endpoint: ipc ?? peer.tcp, curve: !!peer.curve && (ipc === null || peer.curve.mode === 'all') };
}

/** The mailbox a received frame goes to; `src` is a world rank, also in a group's frames. */
function keyOf(h: Header): string {
  switch (h.type) {
    case FrameType.Data:
      return groupKey(h.group, dataKey(h.seq, h.step, h.piece, h.src));
    case FrameType.Ack:
      return groupKey(h.group, ackKey(h.seq, h.src));
    case FrameType.P2P:
      return groupKey(h.group, p2pKey(h.src, h.tag));
    default:
      return `h${h.src}`;
  }
}

/**
 * One membership epoch of a run: mailboxes, deadlines and failure handling. The algorithms
 * live in ring-allreduce.ts, collectives.ts and bucketing.ts and use the primitives below.
 */
export class CommunicatorImpl extends ChannelApi implements Communicator {
  readonly rank: number;
  readonly worldSize: number;
  readonly epoch: number;
  readonly runId: string;
  readonly runHash: number;
  readonly pieceElements: number;
  readonly timeoutMs: number;
  readonly hostOfRank: readonly string[];
  private readonly links: (PeerLink | null)[] = [];
  private readonly inbox = new Map<string, Frame[]>();
  private readonly waiters = new Map<string, Waiter>();
  private readonly byeFrom = new Set<number>();
  private readonly ops = new Set<OpCtx>();
  private seq = 0;
  private closed = false;
  private failed: CollectiveError | null = null;
  private suspecting: { reports: Map<number, number[]>; timer: NodeJS.Timeout } | null = null;
  private readonly graceMs: number;
  private joining = false;
  private readonly groups = new Map<number, SubCommunicator>();

  constructor(private readonly s: CommSettings) {
    super();
    this.rank = s.rank;
    this.worldSize = s.worldSize;
    this.epoch = s.epoch;
    this.runId = s.runId;
    this.runHash = s.runHash;
    this.pieceElements = s.pieceElements;
    this.timeoutMs = s.timeoutMs;
    this.hostOfRank = s.peers.map((p) => p.hostId);
    this.graceMs = Math.min(2000, Math.max(50, Math.round(s.timeoutMs * 0.1)));
    const heartbeatMs = Math.min(2000, Math.max(250, Math.round(s.timeoutMs / 8)));
    for (let r = 0; r < s.worldSize; r++) {
      if (r === s.rank) {
        this.links.push(null);
        continue;
      }
      const peer = s.peers[r];
      const { endpoint, curve } = route(s.self, peer);
      const keys = curve && s.curve
        ? { serverKey: keyBytes(peer.curve!.key, `peers[${r}].curve.key`), publicKey: keyBytes(s.curve.publicKey, 'curve.publicKey'), secretKey: keyBytes(s.curve.secretKey, 'curve.secretKey') }
        : undefined;
      this.links.push(new PeerLink({ endpoint, heartbeatMs, onDisconnect: () => this.onDisconnect(r), curve: keys, onRefused: (d) => this.onRefusedBy(r, d) }));
    }
  }

  // ---- public API (the operations themselves are ChannelApi's) ----------------------------

  /**
   * The communicator of some of this epoch's ranks (see SubCommunicator): every member calls
   * it with the same ranks, in the same (group) order, and the same name. Calling it again
   * returns the same group.
   */
  subgroup(ranks: number[], name = ''): Communicator {
    checkMembers(ranks, this.worldSize, this.rank);
    const id = groupId(ranks, name);
    let g = this.groups.get(id);
    if (!g) {
      g = new SubCommunicator(this, ranks.slice(), id);
      this.groups.set(id, g);
    } else if (g.members.join(',') !== ranks.join(',')) {
      throw new RangeError(`subgroup ${name}: its id collides with the group of ranks ${g.members.join(', ')}; pick another name`);
    }
    return g;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    const wasFailed = this.failed !== null;
    if (!wasFailed) {
      for (let r = 0; r < this.worldSize; r++) this.sendFrame(r, FrameType.Bye, null, 0, 0, 0, 0);
      await Promise.all(this.links.map((l) => l?.flush(1000)));
    }
    this.closed = true;
    this.rejectAll(new CollectiveError('CLOSED', [], 'communicator closed'));
    if (this.suspecting) clearTimeout(this.suspecting.timer);
    for (const l of this.links) l?.close(wasFailed ? 0 : 1000);
    this.s.onClosed();
  }

  // ---- primitives for the algorithms ------------------------------------------------------

  /** Starts a collective: next sequence number, deadline timer; throws if unusable. */
  beginOp(op: OpKind, total: number, wire: WireType, timeoutMs?: number): OpCtx {
    this.assertUsable();
    return this.openOp(++this.seq, op, total, wire, timeoutMs);
  }

  /** A collective with a sequence number of the caller's (a sub-communicator's), under this epoch's deadlines. */
  openOp(seq: number, op: OpKind, total: number, wire: WireType, timeoutMs?: number): OpCtx {
    this.assertUsable();
    const ctx: OpCtx = { seq, op, total, wire, timer: null };
    this.armDeadline(ctx, timeoutMs ?? this.s.timeoutMs);
    this.ops.add(ctx);
    return ctx;
  }

  /** A context without a sequence number (join handshake, point-to-point). */
  beginLooseOp(timeoutMs?: number): OpCtx {
    this.assertUsable();
    const ctx: OpCtx = { seq: 0, op: OpKind.None, total: 0, wire: WireType.Bytes, timer: null };
    this.armDeadline(ctx, timeoutMs ?? this.s.timeoutMs);
    this.ops.add(ctx);
    return ctx;
  }

  endOp(ctx: OpCtx): void {
    if (ctx.timer) clearTimeout(ctx.timer);
    this.ops.delete(ctx);
    this.collectIfDue();
  }

  /** A young GC if enough bytes arrived since the last one (young-gc.ts); call where received frames just died. */
  collectIfDue(): void {
    this.s.young?.collectIfDue();
  }

  sendFrame(to: number, type: FrameType, ctx: OpCtx | null, step: number, piece: number, tag: number, total: number, payload?: Payload, wire?: WireType): Promise<void> {
    return this.sendRaw(to, 0, type, ctx, step, piece, tag, total, payload, wire);
  }

  /** A frame to world rank `to`, of `group` (0: the world's own). */
  sendRaw(
    to: number,
    group: number,
    type: FrameType,
    ctx: OpCtx | null,
    step: number,
    piece: number,
    tag: number,
    total: number,
    payload?: Payload,
    wire?: WireType,
  ): Promise<void> {
    const link = this.links[to];
    if (!link) return Promise.resolve();
    const header = encodeHeader({
      group,
      type,
      runHash: this.s.runHash,
      epoch: this.epoch,
      seq: ctx?.seq ?? 0,
      src: this.rank,
      op: ctx?.op ?? OpKind.None,
      wire: wire ?? ctx?.wire ?? WireType.Bytes,
      step,
      piece,
      tag,
      total,
    });
    return link.send(header, payload);
  }

  dataKey(seq: number, step: number, piece: number, src: number): string {
    return dataKey(seq, step, piece, src);
  }
  ackKey(seq: number, src: number): string {
    return ackKey(seq, src);
  }
  p2pKey(src: number, tag: number): string {
    return p2pKey(src, tag);
  }

  /** The next frame under `key` from rank `from`; rejects when the communicator fails. */
  wait(key: string, from: number, ctx: OpCtx | null): Promise<Frame> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new CollectiveError('CLOSED', [], 'communicator closed'));
    const arrived = this.shiftInbox(key);
    if (arrived) return Promise.resolve(arrived);
    if (this.byeFrom.has(from)) {
      this.fail(new CollectiveError('PEER_LOST', [from], `rank ${from} closed its communicator while rank ${this.rank} still waits for it`));
      return Promise.reject(this.failed);
    }
    if (this.waiters.has(key)) {
      return Promise.reject(new Error(`two concurrent receives on the same key ${key}; await the first before starting another`));
    }
    return new Promise((resolve, reject) => this.waiters.set(key, { from, ctx, resolve, reject }));
  }

  /** The next frame under `key` if it has already arrived; null otherwise (no waiting). */
  take(key: string): Frame | null {
    this.assertUsable();
    return this.shiftInbox(key);
  }

  private shiftInbox(key: string): Frame | null {
    const q = this.inbox.get(key);
    if (!q) return null;
    const f = q.shift()!;
    if (q.length === 0) this.inbox.delete(key);
    return f;
  }

  /** Throws MISMATCH (and aborts every rank) when a peer's frame belongs to another call. */
  check(f: Frame, ctx: OpCtx, expectBytes: number | null, tag = 0): Buffer {
    const h = f.h;
    if (h.op !== ctx.op || (h.total !== ctx.total && ctx.op !== OpKind.Broadcast) || h.wire !== ctx.wire || h.tag !== tag) {
      const err = new CollectiveError(
        'MISMATCH',
        [h.src],
        `rank ${h.src} sent op ${OpKind[h.op]} total ${h.total} wire ${WireType[h.wire]} tag ${h.tag} at sequence ${ctx.seq} where rank ${this.rank} runs ${OpKind[ctx.op]} total ${ctx.total} wire ${WireType[ctx.wire]} tag ${tag}`,
      );
      this.fail(err);
      throw err;
    }
    const p = f.p ?? Buffer.alloc(0);
    if (expectBytes !== null && p.length !== expectBytes) {
      const err = new CollectiveError('MISMATCH', [h.src], `rank ${h.src} sent ${p.length} bytes where ${expectBytes} were expected`);
      this.fail(err);
      throw err;
    }
    return p;
  }

  assertUsable(): void {
    if (this.failed) throw this.failed;
    if (this.closed) throw new CollectiveError('CLOSED', [], 'communicator closed');
  }

  // ---- incoming -----------------------------------------------------------------------------

  deliver(h: Header, p: Buffer | undefined): void {
    if (this.closed) return;
    switch (h.type) {
      case FrameType.Abort:
        return this.onAbort(h, p);
      case FrameType.Report:
        return this.onReport(h.src, p);
      case FrameType.Bye:
        return this.onBye(h.src);
    }
    if (this.failed) return;
    const key = keyOf(h);
    const w = this.waiters.get(key);
    if (w) {
      this.waiters.delete(key);
      w.resolve({ h, p });
      return;
    }
    const q = this.inbox.get(key);
    if (q) q.push({ h, p });
    else this.inbox.set(key, [{ h, p }]);
  }

  private onBye(src: number): void {
    this.byeFrom.add(src);
    for (const w of this.waiters.values()) {
      if (w.from === src) {
        this.fail(new CollectiveError('PEER_LOST', [src], `rank ${src} closed its communicator while rank ${this.rank} still waits for it`));
        return;
      }
    }
  }

  private onAbort(h: Header, p: Buffer | undefined): void {
    let info: { code: CollectiveErrorCode; ranks: number[]; message: string };
    try {
      info = JSON.parse((p ?? Buffer.alloc(0)).toString('utf8'));
    } catch {
      info = { code: 'PEER_LOST', ranks: [h.src], message: 'unreadable abort' };
    }
    this.s.onEvent?.({ kind: 'abort-received', rank: h.src, detail: info.message });
    this.fail(new CollectiveError(info.code, info.ranks, `rank ${h.src} aborted: ${info.message}`), false);
  }

  /** Rank r will not take our connection: this rank is not (any more) a member of an epoch it joined. */
  private onRefusedBy(r: number, detail: string): void {
    this.s.onEvent?.({ kind: 'refused', rank: r, detail });
    this.fail(new CollectiveError('PEER_LOST', [r], `rank ${r} refused this rank's connection (${detail}): its node admits only the CURVE keys of the epochs it has joined`));
  }

  private onDisconnect(r: number): void {
    this.s.onEvent?.({ kind: 'peer-disconnect', rank: r });
    // A peer that said goodbye may close its node; its last frames can still be queued ahead
    // of the Bye on our receive socket, so give the receive loop a moment before judging.
    setTimeout(() => {
      if (this.byeFrom.has(r) || this.closed) return;
      this.fail(new CollectiveError('PEER_LOST', [r], `connection to rank ${r} lost`));
    }, 100).unref();
  }

  // ---- deadlines and failure ----------------------------------------------------------------

  private armDeadline(ctx: OpCtx, timeoutMs: number): void {
    const grace = Math.min(this.graceMs, Math.round(timeoutMs * 0.1));
    ctx.timer = setTimeout(() => this.suspect(grace), Math.max(0, timeoutMs - grace));
  }

  /** Ranks we are currently waiting for. */
  private waitingOn(): number[] {
    return [...new Set([...this.waiters.values()].map((w) => w.from))].sort((a, b) => a - b);
  }

  /**
   * A deadline passed somewhere. Every rank reports whom it waits on; after a grace period
   * the culprits are the ranks waited on that did not report themselves, so the rank that
   * stalled is named rather than its innocent neighbours stuck behind it.
   */
  private suspect(graceMs: number = this.graceMs): void {
    if (this.suspecting || this.failed || this.closed) return;
    const reports = new Map<number, number[]>();
    reports.set(this.rank, this.waitingOn());
    const payload = Buffer.from(JSON.stringify(reports.get(this.rank)));
    for (let r = 0; r < this.worldSize; r++) if (r !== this.rank) this.sendFrame(r, FrameType.Report, null, 0, 0, 0, 0, payload);
    const timer = setTimeout(() => this.judge(), graceMs);
    this.suspecting = { reports, timer };
  }

  private onReport(src: number, p: Buffer | undefined): void {
    if (this.failed) return;
    if (!this.suspecting) this.suspect();
    let waiting: number[] = [];
    try {
      waiting = JSON.parse((p ?? Buffer.alloc(0)).toString('utf8'));
    } catch {
      // treat as waiting on nobody
    }
    this.suspecting!.reports.set(src, waiting);
  }

  private judge(): void {
    if (!this.suspecting || this.failed || this.closed) return;
    const { reports } = this.suspecting;
    const waited = new Set<number>();
    for (const list of reports.values()) for (const r of list) waited.add(r);
    let culprits = [...waited].filter((r) => !reports.has(r));
    if (culprits.length === 0) culprits = reports.get(this.rank) ?? [];
    if (culprits.length === 0) {
      culprits = [];
      for (let r = 0; r < this.worldSize; r++) if (!reports.has(r)) culprits.push(r);
    }
    culprits.sort((a, b) => a - b);
    this.fail(new CollectiveError('TIMEOUT', culprits, `no message from rank ${culprits.join(', ')} before the deadline (rank ${this.rank}, epoch ${this.epoch})`));
  }

  /** Fails every pending and future operation; tells the other ranks unless told by them. */
  fail(err: CollectiveError, propagate = true): void {
    if (this.failed || this.closed) return;
    this.failed = err;
    this.s.onEvent?.({ kind: 'failed', detail: err.message });
    if (this.suspecting) clearTimeout(this.suspecting.timer);
    if (propagate) {
      const payload = Buffer.from(JSON.stringify({ code: err.code, ranks: err.ranks, message: err.message }));
      // the named ranks too: a stalled one must learn it was dropped rather than judge on its own
      for (let r = 0; r < this.worldSize; r++) if (r !== this.rank) this.sendFrame(r, FrameType.Abort, null, 0, 0, 0, 0, payload);
      this.s.onEvent?.({ kind: 'abort-sent', detail: err.code });
    }
    this.rejectAll(err);
  }

  private rejectAll(err: unknown): void {
    for (const ctx of this.ops) if (ctx.timer) clearTimeout(ctx.timer);
    this.ops.clear();
    const ws = [...this.waiters.values()];
    this.waiters.clear();
    this.inbox.clear();
    for (const w of ws) w.reject(err);
  }

  // ---- join handshake -----------------------------------------------------------------------

  /** Every rank greets every other; confirms the world size and that everyone is there. */
  async handshake(): Promise<void> {
    const ctx = this.beginLooseOp();
    this.joining = true;
    try {
      for (let r = 0; r < this.worldSize; r++) if (r !== this.rank) this.sendFrame(r, FrameType.Hello, ctx, 0, 0, this.rank, this.worldSize);
      for (let r = 0; r < this.worldSize; r++) {
        if (r === this.rank) continue;
        const f = await this.wait(`h${r}`, r, ctx);
        if (f.h.total !== this.worldSize) {
          const err = new CollectiveError('MISMATCH', [r], `rank ${r} joined epoch ${this.epoch} with world size ${f.h.total}, rank ${this.rank} with ${this.worldSize}`);
          this.fail(err);
          throw err;
        }
      }
    } finally {
      this.joining = false;
      this.endOp(ctx);
    }
  }

  /**
   * A peer greets us from a newer epoch of this run while we are still joining this one: the
   * membership moved on without us, so fail fast instead of waiting out the deadline.
   */
  newerEpochSeen(src: number, epoch: number): void {
    if (!this.joining) return;
    this.fail(new CollectiveError('EPOCH_MISMATCH', [src], `a peer (rank ${src} there) already runs epoch ${epoch} of run ${this.runId}; rank ${this.rank} joined epoch ${this.epoch}`), false);
  }
}
