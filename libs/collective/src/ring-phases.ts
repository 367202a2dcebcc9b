import type { OpChannel } from './channel';
import { mod, RingLayout } from './partition';
import { addF32 } from './reduce';
import { FrameType, OpKind, WireType } from './types';

/**
 * The two halves of the ring all-reduce as operations of their own, fp32 on the wire, for the
 * pipelined hierarchical all-reduce (hierarchical.ts) within a host. After
 * `ringReduceScatter` rank r holds the sum of segment `ownedSegment(r, n)` (RingLayout's
 * segments of `buf`); `ringAllGather` copies every rank's owned segment to every rank. Only
 * one rank computes each sum and the others copy it, so results are bitwise identical.
 */
export function ownedSegment(rank: number, n: number): number {
  return (rank + 1) % n;
}

function f32(p: Buffer): Float32Array {
  if (p.byteOffset % 4 !== 0) p = Buffer.from(p);
  return new Float32Array(p.buffer, p.byteOffset, p.length / 4);
}

/** Step-0 pieces in flight per link before the first arrivals pace the rest (as the ring's). */
const WINDOW_PIECES = 4;

/**
 * Reduce-scatter (sum) in place. Sends are views of `buf`: each segment is sent after its last
 * addition and never written again here; its sum somewhere needs our piece to have arrived,
 * so by the time the caller's all-gather overwrites it, ZeroMQ no longer reads it. The owned
 * segment is never sent, so the caller may change it at once.
 */
export async function ringReduceScatter(c: OpChannel, buf: Float32Array, timeoutMs?: number): Promise<void> {
  const n = c.worldSize;
  const r = c.rank;
  const ctx = c.beginOp(OpKind.ReduceScatter, buf.length, WireType.F32, timeoutMs);
  try {
    if (n === 1) return;
    const { K, right, left, piece } = ringOf(c, buf);
    const send = (step: number, j: number, v: Float32Array) => c.sendFrame(right, FrameType.Data, ctx, step, j, 0, ctx.total, v);
    const window = Math.min(K, WINDOW_PIECES);
    for (let j = 0; j < window; j++) send(0, j, piece(r, j));
    for (let s = 0; s < n - 1; s++) {
      const seg = mod(r - s - 1, n);
      for (let j = 0; j < K; j++) {
        if (s === 0 && j + window < K) send(0, j + window, piece(r, j + window));
        const v = piece(seg, j);
        addF32(v, f32(c.check(await c.wait(c.dataKey(ctx.seq, s, j, left), left, ctx), ctx, v.length * 4)));
        c.collectIfDue();
        if (s < n - 2) send(s + 1, j, v);
      }
    }
  } finally {
    c.endOp(ctx);
  }
}

/**
 * All-gather in place of every rank's owned segment. Our own segment goes out as a copy and
 * received frames are forwarded as they are, so nothing sent aliases `buf` and the caller may
 * write to it as soon as this returns (no closing acknowledgement needed).
 */
export async function ringAllGather(c: OpChannel, buf: Float32Array, timeoutMs?: number): Promise<void> {
  const n = c.worldSize;
  const r = c.rank;
  const ctx = c.beginOp(OpKind.GatherSegments, buf.length, WireType.F32, timeoutMs);
  try {
    if (n === 1) return;
    const { K, right, left, piece } = ringOf(c, buf);
    const mine = ownedSegment(r, n);
    for (let j = 0; j < K; j++) c.sendFrame(right, FrameType.Data, ctx, 0, j, 0, ctx.total, piece(mine, j).slice());
    // step s receives the segment the left neighbour got at step s-1: owned by rank r-1-s
    for (let s = 0; s < n - 1; s++) {
      const seg = ownedSegment(mod(r - 1 - s, n), n);
      for (let j = 0; j < K; j++) {
        const v = piece(seg, j);
        const p = c.check(await c.wait(c.dataKey(ctx.seq, s, j, left), left, ctx), ctx, v.length * 4);
        v.set(f32(p));
        if (s < n - 2) c.sendFrame(right, FrameType.Data, ctx, s + 1, j, 0, ctx.total, p);
        c.collectIfDue();
      }
    }
  } finally {
    c.endOp(ctx);
  }
}

/** The ring around `c` over `buf`: its pieces, the neighbours, and piece j of segment seg as a view. */
function ringOf(c: OpChannel, buf: Float32Array) {
  const n = c.worldSize;
  const L = new RingLayout(buf.length, n, c.pieceElements);
  const piece = (seg: number, j: number) => {
    const [s, e] = L.piece(seg, j);
    return buf.subarray(s, e);
  };
  return { K: L.pieces, right: (c.rank + 1) % n, left: (c.rank - 1 + n) % n, piece };
}
