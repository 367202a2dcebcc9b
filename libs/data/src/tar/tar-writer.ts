/**
 * A minimal ustar writer: regular files only, mode 0644, mtime 0 and no owner, so the same
 * entries always give the same bytes (ingestion relies on that to skip shards already uploaded).
 */
const BLOCK = 512;

export function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  let base = name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar entry name too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100, 'utf8');
  writeOctal(h, 100, 8, 0o644);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, 0);
  h.fill(0x20, 148, 156); // checksum computed with its own field as spaces
  h[156] = 0x30; // '0' regular file
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i];
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'latin1');
  return h;
}

function writeOctal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0') + '\0', off, len, 'latin1');
}

export function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** Bytes an entry of this size takes in the archive (header + data + padding). */
export function entrySize(size: number): number {
  return BLOCK + size + padding(size);
}

export const TAR_END_SIZE = 2 * BLOCK;

/** Accumulates entries in memory; `finish()` returns the archive with its end-of-archive blocks. */
export class TarWriter {
  private parts: Buffer[] = [];
  private n = 0;

  get size(): number {
    return this.n;
  }

  add(name: string, data: Uint8Array): void {
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.parts.push(tarHeader(name, buf.length), buf);
    const pad = padding(buf.length);
    if (pad) this.parts.push(Buffer.alloc(pad));
    this.n += entrySize(buf.length);
  }

  finish(): Buffer {
    this.parts.push(Buffer.alloc(TAR_END_SIZE));
    const out = Buffer.concat(this.parts);
    this.parts = [];
    this.n = 0;
    return out;
  }
}
