import * as tf from '@tensorflow/tfjs';
import { ModelIoError } from './errors';

/**
 * A small self-describing container for named tensors (weights, optimizer slots):
 *   'TFNT' | u32 version | u32 header bytes | header JSON (utf-8) | pad to 8 | raw little-endian data
 * header = { tensors: [{ name, dtype, shape, offset, byteLength }] }, offsets from the data start.
 */
const MAGIC = 'TFNT';
const VERSION = 1;

export type TensorDtype = 'float32' | 'int32';

export interface NamedArray {
  shape: number[];
  dtype: TensorDtype;
  data: Float32Array | Int32Array;
}

export type TensorLikeValue = tf.Tensor | Float32Array | Int32Array | { shape: number[]; data: Float32Array | Int32Array };

interface HeaderEntry {
  name: string;
  dtype: TensorDtype;
  shape: number[];
  offset: number;
  byteLength: number;
}

function toNamedArray(name: string, v: TensorLikeValue): NamedArray {
  if (v instanceof tf.Tensor) {
    if (v.dtype !== 'float32' && v.dtype !== 'int32') throw new ModelIoError('UNSUPPORTED_DTYPE', `tensor ${name} is ${v.dtype}: only float32 and int32 are stored`);
    return { shape: v.shape.slice(), dtype: v.dtype, data: v.dataSync() as Float32Array | Int32Array };
  }
  const data = v instanceof Float32Array || v instanceof Int32Array ? v : v.data;
  const shape = v instanceof Float32Array || v instanceof Int32Array ? [v.length] : v.shape;
  if (shape.reduce((a, b) => a * b, 1) !== data.length) {
    throw new ModelIoError('BAD_FORMAT', `tensor ${name}: shape [${shape.join(', ')}] does not hold ${data.length} values`);
  }
  return { shape: shape.slice(), dtype: data instanceof Int32Array ? 'int32' : 'float32', data };
}

const isLittleEndian = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Serialises named tensors, in the given order. */
export function tensorsToBytes(named: Record<string, TensorLikeValue>): Uint8Array {
  if (!isLittleEndian) throw new ModelIoError('BAD_FORMAT', 'big-endian hosts are not supported');
  const arrays = Object.entries(named).map(([name, v]) => [name, toNamedArray(name, v)] as const);
  const entries: HeaderEntry[] = [];
  let offset = 0;
  for (const [name, a] of arrays) {
    entries.push({ name, dtype: a.dtype, shape: a.shape, offset, byteLength: a.data.byteLength });
    offset += a.data.byteLength;
  }
  const header = Buffer.from(JSON.stringify({ tensors: entries }), 'utf8');
  const dataStart = Math.ceil((12 + header.length) / 8) * 8;
  const out = new Uint8Array(dataStart + offset);
  out.set(Buffer.from(MAGIC, 'ascii'), 0);
  const view = new DataView(out.buffer);
  view.setUint32(4, VERSION, true);
  view.setUint32(8, header.length, true);
  out.set(header, 12);
  arrays.forEach(([, a], i) => out.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength), dataStart + entries[i].offset));
  return out;
}

/** The names of the tensors in a container, in order, from its header alone. */
export function tensorNames(bytes: Uint8Array): string[] {
  return readHeader(bytes).tensors.map((t) => t.name);
}

function readHeader(bytes: Uint8Array): { tensors: HeaderEntry[]; dataStart: number } {
  if (bytes.length < 12 || Buffer.from(bytes.subarray(0, 4)).toString('ascii') !== MAGIC) {
    throw new ModelIoError('BAD_FORMAT', 'not a tensor container (no TFNT magic): pass bytes written by tensorsToBytes or weightsToBytes');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== VERSION) throw new ModelIoError('BAD_FORMAT', `tensor container version ${version}; this build reads version ${VERSION}`);
  const headerLength = view.getUint32(8, true);
  if (12 + headerLength > bytes.length) throw new ModelIoError('BAD_FORMAT', 'tensor container truncated inside its header');
  const { tensors } = JSON.parse(Buffer.from(bytes.subarray(12, 12 + headerLength)).toString('utf8')) as { tensors: HeaderEntry[] };
  return { tensors, dataStart: Math.ceil((12 + headerLength) / 8) * 8 };
}

/** Reads what tensorsToBytes wrote; arrays are copies, so `bytes` may be reused. */
export function tensorsFromBytes(bytes: Uint8Array): Record<string, NamedArray> {
  const { tensors, dataStart } = readHeader(bytes);
  const out: Record<string, NamedArray> = {};
  for (const t of tensors) {
    const start = dataStart + t.offset;
    if (start + t.byteLength > bytes.length) throw new ModelIoError('BAD_FORMAT', `tensor container truncated inside ${t.name}`);
    const raw = bytes.slice(start, start + t.byteLength);
    const data = t.dtype === 'int32' ? new Int32Array(raw.buffer, 0, t.byteLength / 4) : new Float32Array(raw.buffer, 0, t.byteLength / 4);
    if (data.length !== t.shape.reduce((a, b) => a * b, 1)) throw new ModelIoError('BAD_FORMAT', `tensor ${t.name}: shape and data length disagree`);
    out[t.name] = { shape: t.shape, dtype: t.dtype, data };
  }
  return out;
}

/** Every weight of the model (trainable and batch-norm moving statistics), in tf.LayersModel weight order. */
export function weightsToBytes(model: tf.LayersModel): Uint8Array {
  const named: Record<string, tf.Tensor> = {};
  for (const w of model.weights) {
    if (w.originalName in named) throw new ModelIoError('WEIGHT_MISMATCH', `model ${model.name} has two weights named ${w.originalName}: give its layers unique names`);
    named[w.originalName] = w.read();
  }
  return tensorsToBytes(named);
}

/** Loads weights written by weightsToBytes into a model of the same architecture (matched by name and shape). */
export function weightsFromBytes(model: tf.LayersModel, bytes: Uint8Array): void {
  const stored = tensorsFromBytes(bytes);
  const wanted = new Set(model.weights.map((w) => w.originalName));
  const missing = [...wanted].filter((n) => !(n in stored));
  const extra = Object.keys(stored).filter((n) => !wanted.has(n));
  if (missing.length || extra.length) {
    throw new ModelIoError('WEIGHT_MISMATCH', `weights do not fit model ${model.name}: missing ${missing.slice(0, 5).join(', ') || 'none'}${missing.length > 5 ? ` (+${missing.length - 5})` : ''}; unexpected ${extra.slice(0, 5).join(', ') || 'none'}: build the same architecture the weights came from`);
  }
  const tensors = model.weights.map((w) => {
    const s = stored[w.originalName];
    if (s.shape.join('x') !== w.shape.join('x')) {
      throw new ModelIoError('WEIGHT_MISMATCH', `weight ${w.originalName}: stored shape [${s.shape.join(', ')}], model has [${w.shape.join(', ')}]`);
    }
    return tf.tensor(s.data, s.shape, s.dtype);
  });
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}
