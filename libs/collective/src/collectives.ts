import type { OpChannel } from './channel';
import { FrameType, OpKind, WireType } from './types';

function bytesOf(buf: Uint8Array | Float32Array): Uint8Array {
  return buf instanceof Uint8Array ? buf : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

function checkRank(c: OpChannel, r: number, what: string): void {
  if (!Number.isInteger(r) || r < 0 || r >= c.worldSize) throw new RangeError(`${what} must be a rank in [0, ${c.worldSize}), got ${r}`);
}

/**
 * Pipelined chain broadcast root -> root+1 -> ... : each piece is forwarded as it arrives, so
 * the time is about one transfer of the buffer whatever the world size. Non-roots learn the
 * length from the first frame and pass null.
 */
export async function broadcast(c: OpChannel, buf: Uint8Array | Float32Array | null, root: number, timeoutMs?: number): Promise<Uint8Array> {
  checkRank(c, root, 'broadcast root');
  const n = c.worldSize;
  const pos = (c.rank - root + n) % n;
  const next = (c.rank + 1) % n;
  const prev = (c.rank - 1 + n) % n;
  const pieceBytes = c.pieceElements * 4;
  if (pos === 0 && !buf) throw new TypeError('broadcast: the root must pass a buffer');
  const mine = pos === 0 ? bytesOf(buf!) : null;
  // The length is not known to non-roots, so `total` is not compared for this op.
  const ctx = c.beginOp(OpKind.Broadcast, 0, WireType.Bytes, timeoutMs);
  try {
    if (n === 1) return mine!;
    if (mine) {
      const pieces = Math.max(1, Math.ceil(mine.length / pieceBytes));
      for (let j = 0; j < pieces; j++) {
        c.sendFrame(next, FrameType.Data, ctx, 0, j, root, mine.length, mine.subarray(j * pieceBytes, (j + 1) * pieceBytes), WireType.Bytes);
      }
      // pieces alias the caller's buffer: return once the last rank of the chain has them
      c.check(await c.wait(c.ackKey(ctx.seq, prev), prev, ctx), ctx, 0, root);
      return mine;
    }
    let out: Uint8Array | null = null;
    let pieces = 1;
    let offset = 0;
    for (let j = 0; j < pieces; j++) {
      const f = await c.wait(c.dataKey(ctx.seq, 0, j, prev), prev, ctx);
      const p = c.check(f, ctx, null, root);
      if (j === 0) {
        const total = f.h.total;
        pieces = total === 0 ? 1 : Math.ceil(total / p.length);
        // a single piece is kept as received, without a copy
        out = pieces === 1 ? new Uint8Array(p.buffer, p.byteOffset, p.length) : new Uint8Array(total);
      }
      if (pieces > 1) out!.set(p, offset);
      offset += p.length;
      if (pos < n - 1) c.sendFrame(next, FrameType.Data, ctx, 0, j, root, f.h.total, p, WireType.Bytes);
    }
    if (pos === n - 1) c.sendFrame(root, FrameType.Ack, ctx, 0, 0, root, 0);
    return out!;
  } finally {
    c.endOp(ctx);
  }
}

/** Every rank tells every other rank it arrived; a missing rank is named directly. */
export async function barrier(c: OpChannel, timeoutMs?: number): Promise<void> {
  await exchange(c, OpKind.Barrier, null, timeoutMs);
}

/** Small JSON values from every rank, in rank order. */
export async function allGather(c: OpChannel, value: unknown, timeoutMs?: number): Promise<unknown[]> {
  const json = JSON.stringify(value ?? null);
  const got = await exchange(c, OpKind.AllGather, Buffer.from(json), timeoutMs);
  return got.map((b, r) => (r === c.rank ? JSON.parse(json) : JSON.parse(b!.toString('utf8'))));
}

async function exchange(c: OpChannel, op: OpKind, payload: Buffer | null, timeoutMs?: number): Promise<(Buffer | null)[]> {
  const ctx = c.beginOp(op, 0, WireType.Bytes, timeoutMs);
  try {
    const out: (Buffer | null)[] = new Array(c.worldSize).fill(null);
    for (let r = 0; r < c.worldSize; r++) if (r !== c.rank) c.sendFrame(r, FrameType.Data, ctx, 0, 0, 0, 0, payload ?? undefined);
    for (let r = 0; r < c.worldSize; r++) {
      if (r === c.rank) continue;
      out[r] = c.check(await c.wait(c.dataKey(ctx.seq, 0, 0, r), r, ctx), ctx, null);
    }
    return out;
  } finally {
    c.endOp(ctx);
  }
}

/** Resolves once queued; the buffer is sent without a copy, so do not modify it afterwards. */
export async function p2pSend(c: OpChannel, peer: number, tag: number, buf: Uint8Array | Float32Array): Promise<void> {
  checkRank(c, peer, 'send peer');
  if (peer === c.rank) throw new RangeError('send to self is not supported');
  if (!Number.isInteger(tag) || tag < 0 || tag > 0xffffffff) throw new RangeError(`tag must be a uint32, got ${tag}`);
  c.assertUsable();
  await c.sendFrame(peer, FrameType.P2P, null, 0, 0, tag, buf.byteLength, bytesOf(buf), WireType.Bytes);
}

/** Frames from one peer with one tag arrive in the order they were sent. */
export async function p2pRecv(c: OpChannel, peer: number, tag: number, timeoutMs?: number): Promise<Uint8Array> {
  checkRank(c, peer, 'recv peer');
  if (peer === c.rank) throw new RangeError('recv from self is not supported');
  const ctx = c.beginLooseOp(timeoutMs);
  try {
    const f = await c.wait(c.p2pKey(peer, tag), peer, ctx);
    const p = f.p ?? Buffer.alloc(0);
    return new Uint8Array(p.buffer, p.byteOffset, p.length);
  } finally {
    c.endOp(ctx);
  }
}
