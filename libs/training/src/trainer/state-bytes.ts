import { TrainingError } from '../errors';

/**
 * The initial-state broadcast's wire format: float32 arrays in a fixed order plus a JSON
 * `meta`, matched by position (layer names may differ between processes). Checkpoints use
 * @tensorfleet/models' weightsToBytes/tensorsToBytes instead.
 */

/** A named float32 array with its shape. */
export interface NamedArray {
  name: string;
  shape: number[];
  values: Float32Array;
}

// Layout: "TFTB" | u32 version | u32 header bytes | header JSON (space-padded to 4) | f32 data (LE).
const MAGIC = 0x42544654; // "TFTB" read as little-endian u32
const VERSION = 1;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  throw new Error('@tensorfleet/training needs a little-endian host');
}

interface Header {
  meta: unknown;
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
}

/** Packs float32 arrays plus a JSON `meta` object into one buffer. */
export function encodeTensors(tensors: NamedArray[], meta: unknown = {}): Uint8Array {
  let offset = 0;
  const header: Header = { meta, tensors: [] };
  for (const t of tensors) {
    const length = t.shape.reduce((a, b) => a * b, 1);
    if (length !== t.values.length) {
      throw new TrainingError('INVALID_OPTIONS', `tensor ${t.name}: shape [${t.shape}] holds ${length} values, got ${t.values.length}`);
    }
    header.tensors.push({ name: t.name, shape: t.shape, offset, length });
    offset += length;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (4 - (json.length % 4)) % 4;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const out = new Uint8Array(12 + json.length + offset * 4);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, VERSION, true);
  dv.setUint32(8, json.length, true);
  out.set(json, 12);
  const data = new Float32Array(out.buffer, 12 + json.length, offset);
  header.tensors.forEach((h, i) => data.set(tensors[i].values, h.offset));
  return out;
}

/** Inverse of encodeTensors; the returned arrays are copies, so `bytes` may be reused. */
export function decodeTensors(bytes: Uint8Array): { meta: unknown; tensors: NamedArray[] } {
  const corrupt = (why: string): never => {
    throw new TrainingError('STATE_MISMATCH', `initial-state buffer is not in the TFTB format (${why}): do all ranks run the same @tensorfleet/training?`);
  };
  if (bytes.byteLength < 12) corrupt('too short');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dv.getUint32(0, true) !== MAGIC) corrupt('bad magic');
  if (dv.getUint32(4, true) !== VERSION) corrupt(`version ${dv.getUint32(4, true)}`);
  const headerLen = dv.getUint32(8, true);
  if (12 + headerLen > bytes.byteLength) corrupt('header overruns the buffer');
  let header: Header;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 12, headerLen).toString('utf8')) as Header;
  } catch {
    return corrupt('unreadable header');
  }
  const total = header.tensors.reduce((a, t) => a + t.length, 0);
  if (12 + headerLen + total * 4 !== bytes.byteLength) corrupt(`expected ${12 + headerLen + total * 4} bytes, got ${bytes.byteLength}`);
  const start = 12 + headerLen;
  // Copy out byte-wise first: `bytes` may sit at an offset that is not 4-aligned.
  const tensors = header.tensors.map((t) => {
    const b = bytes.slice(start + t.offset * 4, start + (t.offset + t.length) * 4);
    return { name: t.name, shape: t.shape, values: new Float32Array(b.buffer, b.byteOffset, t.length) };
  });
  return { meta: header.meta, tensors };
}
