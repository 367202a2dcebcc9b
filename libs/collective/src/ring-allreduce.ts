import type { Frame, OpChannel, OpCtx } from './channel';
import { decodeBF16Into, decodeF16Into, encodeBF16, encodeF16 } from './half';
import { mod, RingLayout } from './partition';
import { addDivF32, addF32, divF32 } from './reduce';
import { Payload } from './peer-link';
import { AllReduceOptions, FrameType, OpKind, WireType } from './types';

/** Step-0 pieces in flight per link before the first arrivals pace the rest. */
const WINDOW_PIECES = 4;
/**
 * Below this size the first all-gather frames are copies instead of views of the caller's
 * buffer, which saves the closing acknowledgement (one message latency) for a cheap memcpy.
 */
const COPY_BELOW_BYTES = 256 * 1024;
const WIRE: Record<string, WireType> = { fp32: WireType.F32, fp16: WireType.F16, bf16: WireType.BF16 };

/** Float32 (or Uint16 for half wires) view of a received frame, copying only if misaligned. */
function view(p: Buffer, wire: WireType): Float32Array | Uint16Array {
  const el = wire === WireType.F32 ? 4 : 2;
  if (p.byteOffset % el !== 0) p = Buffer.from(p);
  return wire === WireType.F32 ? new Float32Array(p.buffer, p.byteOffset, p.length / 4) : new Uint16Array(p.buffer, p.byteOffset, p.length / 2);
}

function encode(v: Float32Array, wire: WireType): Payload {
  if (wire === WireType.F32) return v;
  return wire === WireType.F16 ? encodeF16(v) : encodeBF16(v);
}

/** dst (+)= decoded src; kept monomorphic per wire type so V8 optimises the loops. */
function absorb(src: Float32Array | Uint16Array, dst: Float32Array, wire: WireType, add: boolean): void {
  if (wire === WireType.F32) {
    if (add) addF32(dst, src as Float32Array);
    else dst.set(src as Float32Array);
  } else if (wire === WireType.F16) decodeF16Into(src as Uint16Array, dst, add);
  else decodeBF16Into(src as Uint16Array, dst, add);
}

/**
 * Ring all-reduce: reduce-scatter then all-gather, n-1 steps each. Every segment is cut into
 * pieces and each piece is forwarded as soon as it has been added, so sends, receives and
 * additions overlap. Only the owner of a segment computes its final value; the others copy
 * it, so the result is bitwise identical on every rank.
 */
export async function ringAllReduce(c: OpChannel, buf: Float32Array, opts: AllReduceOptions): Promise<Float32Array> {
  if (!(buf instanceof Float32Array)) throw new TypeError('allReduce takes a Float32Array');
  const op = opts.op ?? 'sum';
  if (op !== 'sum' && op !== 'mean') throw new TypeError(`allReduce op must be 'sum' or 'mean', got ${String(op)}`);
  const wire = WIRE[opts.wire ?? 'fp32'];
  if (wire === undefined) throw new TypeError(`allReduce wire must be 'fp32', 'fp16' or 'bf16', got ${String(opts.wire)}`);
  const n = c.worldSize;
  const r = c.rank;
  const ctx = c.beginOp(OpKind.AllReduce, buf.length, wire, opts.timeoutMs);
  try {
    if (n === 1) return buf; // nothing travels, so nothing is rounded to the wire format
    await ring(c, ctx, buf, n, r, wire, op === 'mean');
    return buf;
  } finally {
    c.endOp(ctx);
  }
}

async function ring(c: OpChannel, ctx: OpCtx, buf: Float32Array, n: number, r: number, wire: WireType, mean: boolean): Promise<void> {
  const L = new RingLayout(buf.length, n, c.pieceElements);
  const K = L.pieces;
  const right = (r + 1) % n;
  const left = (r - 1 + n) % n;
  const el = wire === WireType.F32 ? 4 : 2;
  // same decision on every rank: it depends on the length only
  const copyFinal = buf.length * 4 <= COPY_BELOW_BYTES;
  const acked = wire === WireType.F32 && !copyFinal;
  const piece = (seg: number, j: number) => {
    const [s, e] = L.piece(seg, j);
    return buf.subarray(s, e);
  };
  const send = (step: number, j: number, payload: Payload) => c.sendFrame(right, FrameType.Data, ctx, step, j, 0, ctx.total, payload);

  // all-gather: step s stores segment r-s and forwards the received frame as it is. Its frames
  // are taken as soon as they have arrived, between the additions of the reduce-scatter too:
  // left waiting until the reduce-scatter ends, they would outlive young GCs and only a full
  // GC could free them (young-gc.ts). Storing early is safe: the final value of a piece exists
  // only after our own sends of that piece were received, so ZeroMQ no longer reads it from
  // `buf`, and we no longer add into it.
  let agStep = 0;
  let agPiece = 0;
  const agKey = () => c.dataKey(ctx.seq, n - 1 + agStep, agPiece, left);
  const gather = (f: Frame) => {
    const v = piece(mod(r - agStep, n), agPiece);
    const p = c.check(f, ctx, v.length * el);
    absorb(view(p, wire), v, wire, false);
    // Forward what we just stored: with fp32, our copy in `buf` rather than the frame, so the
    // frame dies now instead of waiting in ZeroMQ's queue, where it would outlive young GCs
    // (the closing acknowledgement covers every view of `buf` we send).
    if (agStep < n - 2) send(n + agStep, agPiece, acked ? v : p);
    c.collectIfDue();
    if (++agPiece < K) return;
    agPiece = 0;
    agStep++;
    if (agStep === n - 1 && acked) c.sendFrame(left, FrameType.Ack, ctx, 0, 0, 0, ctx.total);
  };
  const gatherArrived = () => {
    while (agStep < n - 1) {
      const f = c.take(agKey());
      if (!f) return;
      gather(f);
    }
  };

  // reduce-scatter: step s sends segment r-s and adds segment r-s-1 arriving from the left
  // Step 0 sends from our own data could all go at once; a window keeps the bytes in flight
  // (and the receiver's unprocessed frames, which cost GC time) bounded. Later sends are paced
  // by the arrivals that trigger them.
  const window = Math.min(K, WINDOW_PIECES);
  for (let j = 0; j < window; j++) send(0, j, encode(piece(r, j), wire));
  for (let s = 0; s < n - 1; s++) {
    const seg = mod(r - s - 1, n);
    for (let j = 0; j < K; j++) {
      if (s === 0 && j + window < K) send(0, j + window, encode(piece(r, j + window), wire));
      const v = piece(seg, j);
      const p = c.check(await c.wait(c.dataKey(ctx.seq, s, j, left), left, ctx), ctx, v.length * el);
      const last = s === n - 2;
      if (last && mean && wire === WireType.F32) addDivF32(v, view(p, wire) as Float32Array, n);
      else {
        absorb(view(p, wire), v, wire, true);
        if (last && mean) divF32(v, n);
      }
      c.collectIfDue(); // the frame just added is garbage now
      if (!last) send(s + 1, j, encode(v, wire));
      else if (wire === WireType.F32) send(n - 1, j, copyFinal ? v.slice() : v);
      else {
        // segment r+1 is complete here: round it as the others will receive it
        const enc = encode(v, wire) as Uint16Array;
        absorb(enc, v, wire, false);
        send(n - 1, j, enc);
      }
      gatherArrived();
    }
  }
  while (agStep < n - 1) gather(await c.wait(agKey(), left, ctx));
  // Our sends point into `buf` (zero copy); the caller may write to `buf` as soon as we return,
  // so wait until the right neighbour has received all of them, i.e. finished its all-gather.
  if (acked) c.check(await c.wait(c.ackKey(ctx.seq, right), right, ctx), ctx, 0);
}
