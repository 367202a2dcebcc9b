import { FrameType, OpKind, WireType } from './types';

/** Fixed binary frame header, little-endian. */
export const HEADER_BYTES = 44;
const MAGIC = 0x5446; // 'TF'
// Version 2 added the group field (sub-communicators); version-1 frames are foreign.
const VERSION = 2;

export interface Header {
  type: FrameType;
  runHash: number;
  epoch: number;
  seq: number;
  src: number;
  op: OpKind;
  wire: WireType;
  step: number;
  piece: number;
  tag: number;
  /** Total elements/bytes of the operation, compared across ranks. */
  total: number;
  /** Sub-communicator the frame belongs to (Communicator.subgroup); 0 = the whole world. */
  group: number;
}

export function encodeHeader(h: Header): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt16LE(MAGIC, 0);
  b.writeUInt8(VERSION, 2);
  b.writeUInt8(h.type, 3);
  b.writeUInt32LE(h.runHash >>> 0, 4);
  b.writeUInt32LE(h.epoch >>> 0, 8);
  b.writeUInt32LE(h.seq >>> 0, 12);
  b.writeUInt16LE(h.src, 16);
  b.writeUInt8(h.op, 18);
  b.writeUInt8(h.wire, 19);
  b.writeUInt32LE(h.step >>> 0, 20);
  b.writeUInt32LE(h.piece >>> 0, 24);
  b.writeUInt32LE(h.tag >>> 0, 28);
  b.writeDoubleLE(h.total, 32);
  b.writeUInt32LE(h.group >>> 0, 40);
  return b;
}

/** Null for frames that are not ours (wrong magic, version or size). */
export function decodeHeader(b: Buffer): Header | null {
  if (b.length !== HEADER_BYTES || b.readUInt16LE(0) !== MAGIC || b.readUInt8(2) !== VERSION) return null;
  return {
    type: b.readUInt8(3),
    runHash: b.readUInt32LE(4),
    epoch: b.readUInt32LE(8),
    seq: b.readUInt32LE(12),
    src: b.readUInt16LE(16),
    op: b.readUInt8(18),
    wire: b.readUInt8(19),
    step: b.readUInt32LE(20),
    piece: b.readUInt32LE(24),
    tag: b.readUInt32LE(28),
    total: b.readDoubleLE(32),
    group: b.readUInt32LE(40),
  };
}

/** FNV-1a: run ids travel as a 32-bit hash in every header. */
export function hashRunId(runId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < runId.length; i++) {
    h ^= runId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
