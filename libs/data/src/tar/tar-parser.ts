import { DataError } from '../errors';

export interface TarEntry {
  name: string;
  data: Buffer;
}

const BLOCK = 512;

/**
 * Parses a tar stream entry by entry as chunks arrive (never holds more than one entry).
 * Throws DataError TAR_TRUNCATED after the last complete entry if the stream ends early
 * (mid-entry or without the end-of-archive blocks), TAR_CORRUPT on a bad header checksum.
 */
export async function* parseTar(source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>, label = 'tar'): AsyncGenerator<TarEntry> {
  const q = new ChunkQueue();
  const it = Symbol.asyncIterator in source ? source[Symbol.asyncIterator]() : (source as Iterable<Buffer | Uint8Array>)[Symbol.iterator]();
  const fill = async (n: number): Promise<boolean> => {
    while (q.length < n) {
      const r = await it.next();
      if (r.done) return false;
      q.push(Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value));
    }
    return true;
  };
  try {
    for (;;) {
      if (!(await fill(BLOCK))) throw new DataError('TAR_TRUNCATED', `${label}: truncated (ends without the end-of-archive blocks)`);
      const header = q.take(BLOCK);
      if (isZero(header)) return; // end of archive (the second zero block is optional for readers)
      const { name, size, type } = parseHeader(header, label);
      const total = size + ((BLOCK - (size % BLOCK)) % BLOCK);
      if (!(await fill(total))) throw new DataError('TAR_TRUNCATED', `${label}: truncated inside entry ${name}`);
      const data = q.take(total).subarray(0, size);
      // Only regular files carry samples; directories, links and pax headers are skipped.
      if (type === 0x30 || type === 0) yield { name, data };
    }
  } finally {
    await it.return?.(undefined);
  }
}

function parseHeader(h: Buffer, label: string): { name: string; size: number; type: number } {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  const stored = parseInt(h.toString('latin1', 148, 156).replace(/\0.*$/s, '').trim(), 8);
  if (stored !== sum) throw new DataError('TAR_CORRUPT', `${label}: bad header checksum (not a tar file, or corrupt)`);
  const str = (off: number, len: number) => {
    const s = h.subarray(off, off + len);
    const z = s.indexOf(0);
    return s.subarray(0, z < 0 ? len : z).toString('utf8');
  };
  const prefix = h.toString('latin1', 257, 262) === 'ustar' ? str(345, 155) : '';
  const base = str(0, 100);
  const size = parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/s, '').trim() || '0', 8);
  return { name: prefix ? `${prefix}/${base}` : base, size, type: h[156] };
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** A queue of chunks taken from in exact sizes without re-copying the whole backlog. */
class ChunkQueue {
  private chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    if (b.length === 0) return;
    this.chunks.push(b);
    this.length += b.length;
  }
  take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.length -= n;
    const first = this.chunks[0];
    if (first.length >= n) {
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

export interface WdsSample {
  key: string;
  /** extension (lower case, without dot) → bytes */
  files: Map<string, Buffer>;
}

/**
 * Groups consecutive tar entries sharing a key (WebDataset: the basename up to its first dot,
 * with its directory) into samples.
 */
export async function* groupSamples(entries: AsyncIterable<TarEntry>): AsyncGenerator<WdsSample> {
  let cur: WdsSample | null = null;
  for await (const e of entries) {
    const slash = e.name.lastIndexOf('/');
    const dot = e.name.indexOf('.', slash + 1);
    const key = dot < 0 ? e.name : e.name.slice(0, dot);
    const ext = dot < 0 ? '' : e.name.slice(dot + 1).toLowerCase();
    if (!cur || cur.key !== key) {
      if (cur) yield cur;
      cur = { key, files: new Map() };
    }
    cur.files.set(ext, e.data);
  }
  if (cur) yield cur;
}
