import type { Header } from './header';
import type { Payload } from './peer-link';
import { allGather, barrier, broadcast, p2pRecv, p2pSend } from './collectives';
import { allReduceMany } from './bucketing';
import { chooseAlgorithm, topologyAllReduce } from './hierarchical';
import { AllReduceAlgorithm, AllReduceManyOptions, AllReduceOptions, Communicator, FrameType, OpKind, WireType } from './types';

export interface Frame {
  h: Header;
  p: Buffer | undefined;
}

export interface OpCtx {
  seq: number;
  op: OpKind;
  total: number;
  wire: WireType;
  timer: NodeJS.Timeout | null;
}

/**
 * What the algorithms (ring-allreduce.ts, collectives.ts, bucketing.ts) need of a group of
 * ranks. Ranks, `to` and `from` are ranks of this channel: the whole world for a
 * communicator, the members for a sub-communicator. Keys name a mailbox of received frames.
 */
export interface OpChannel {
  readonly rank: number;
  readonly worldSize: number;
  readonly pieceElements: number;
  /** Starts a collective: next sequence number, deadline timer; throws if unusable. */
  beginOp(op: OpKind, total: number, wire: WireType, timeoutMs?: number): OpCtx;
  /** A context without a sequence number (point-to-point), with a deadline. */
  beginLooseOp(timeoutMs?: number): OpCtx;
  endOp(ctx: OpCtx): void;
  /** A young GC if enough bytes arrived since the last one (young-gc.ts). */
  collectIfDue(): void;
  sendFrame(to: number, type: FrameType, ctx: OpCtx | null, step: number, piece: number, tag: number, total: number, payload?: Payload, wire?: WireType): Promise<void>;
  /** The next frame under `key` from `from`; rejects when the communicator fails. */
  wait(key: string, from: number, ctx: OpCtx | null): Promise<Frame>;
  /** The next frame under `key` if it has already arrived; null otherwise. */
  take(key: string): Frame | null;
  /** Throws MISMATCH (and aborts every rank) when a peer's frame belongs to another call. */
  check(f: Frame, ctx: OpCtx, expectBytes: number | null, tag?: number): Buffer;
  assertUsable(): void;
  dataKey(seq: number, step: number, piece: number, src: number): string;
  ackKey(seq: number, src: number): string;
  p2pKey(src: number, tag: number): string;
}

/** Mailbox keys of the world's frames; a sub-communicator's are these behind its group id. */
export function dataKey(seq: number, step: number, piece: number, src: number): string {
  return `d${seq}.${step}.${piece}.${src}`;
}
export function ackKey(seq: number, src: number): string {
  return `a${seq}.${src}`;
}
export function p2pKey(src: number, tag: number): string {
  return `p${src}.${tag}`;
}
export function groupKey(group: number, key: string): string {
  return group === 0 ? key : `g${group}:${key}`;
}

/** The public operations, the same for a communicator and its sub-communicators. */
export abstract class ChannelApi implements OpChannel {
  abstract readonly rank: number;
  abstract readonly worldSize: number;
  abstract readonly epoch: number;
  abstract readonly runId: string;
  abstract readonly pieceElements: number;
  abstract readonly hostOfRank: readonly string[];
  readonly allReduceCalls: Record<AllReduceAlgorithm, number> = { ring: 0, hierarchical: 0 };
  abstract beginOp(op: OpKind, total: number, wire: WireType, timeoutMs?: number): OpCtx;
  abstract beginLooseOp(timeoutMs?: number): OpCtx;
  abstract endOp(ctx: OpCtx): void;
  abstract collectIfDue(): void;
  abstract sendFrame(to: number, type: FrameType, ctx: OpCtx | null, step: number, piece: number, tag: number, total: number, payload?: Payload, wire?: WireType): Promise<void>;
  abstract wait(key: string, from: number, ctx: OpCtx | null): Promise<Frame>;
  abstract take(key: string): Frame | null;
  abstract check(f: Frame, ctx: OpCtx, expectBytes: number | null, tag?: number): Buffer;
  abstract assertUsable(): void;
  abstract dataKey(seq: number, step: number, piece: number, src: number): string;
  abstract ackKey(seq: number, src: number): string;
  abstract p2pKey(src: number, tag: number): string;
  abstract subgroup(ranks: number[], name?: string): Communicator;
  abstract close(): Promise<void>;

  allReduce(buf: Float32Array, opts: AllReduceOptions = {}): Promise<Float32Array> {
    const algorithm = opts.algorithm ?? 'ring';
    const chosen = algorithm === 'auto' ? chooseAlgorithm(this.hostOfRank, buf.byteLength) : algorithm;
    if (chosen in this.allReduceCalls) this.allReduceCalls[chosen]++;
    return topologyAllReduce(this, buf, this.hostOfRank, { ...opts, algorithm: chosen });
  }
  allReduceMany(bufs: Float32Array[], opts: AllReduceManyOptions = {}): Promise<Float32Array[]> {
    return allReduceMany(this, bufs, opts);
  }
  broadcast(buf: Uint8Array | Float32Array | null, root: number, opts: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    return broadcast(this, buf, root, opts.timeoutMs);
  }
  barrier(opts: { timeoutMs?: number } = {}): Promise<void> {
    return barrier(this, opts.timeoutMs);
  }
  allGather(value: unknown, opts: { timeoutMs?: number } = {}): Promise<unknown[]> {
    return allGather(this, value, opts.timeoutMs);
  }
  send(peer: number, tag: number, buf: Uint8Array | Float32Array): Promise<void> {
    return p2pSend(this, peer, tag, buf);
  }
  recv(peer: number, tag: number, opts: { timeoutMs?: number } = {}): Promise<Uint8Array> {
    return p2pRecv(this, peer, tag, opts.timeoutMs);
  }
}
