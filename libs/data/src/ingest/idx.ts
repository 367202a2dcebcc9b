import { readFile, readdir } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { DataError } from '../errors';
import { DatasetSource, SourceItem } from './source';

/** An IDX file: magic 0x0000 <type 0x08 = ubyte> <ndims>, then ndims big-endian uint32 sizes, then data. */
export function parseIdx(buf: Buffer, name: string): { dims: number[]; data: Buffer } {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new DataError('INGEST', `${name} is not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) throw new DataError('INGEST', `${name}: only unsigned-byte IDX data is supported (type 0x${buf[2].toString(16)})`);
  const nd = buf[3];
  const dims = Array.from({ length: nd }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const data = buf.subarray(4 + 4 * nd);
  const want = dims.reduce((a, x) => a * x, 1);
  if (data.length < want) throw new DataError('INGEST', `${name} is truncated: ${data.length} of ${want} bytes`);
  return { dims, data: data.subarray(0, want) };
}

async function load(dir: string, files: string[], re: RegExp): Promise<{ dims: number[]; data: Buffer } | null> {
  const f = files.find((x) => re.test(x));
  if (!f) return null;
  let buf = await readFile(join(dir, f));
  if (f.endsWith('.gz')) buf = gunzipSync(buf);
  return parseIdx(buf, f);
}

/** MNIST-family IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte, t10k-*). */
export async function idxSource(dir: string, opts: { classNames?: string[] } = {}): Promise<DatasetSource> {
  const files = (await readdir(dir)).sort();
  const splits: Record<string, SourceItem[]> = {};
  let maxLabel = 0;
  for (const [split, stem] of [['train', 'train'], ['val', 't10k']] as const) {
    const images = await load(dir, files, new RegExp(`^${stem}-images[.-]idx3-ubyte(\\.gz)?$`));
    const labels = await load(dir, files, new RegExp(`^${stem}-labels[.-]idx1-ubyte(\\.gz)?$`));
    if (!images && !labels) continue;
    if (!images || !labels) throw new DataError('INGEST', `${dir}: ${stem} images and labels must both be present`);
    const [n, h, w] = images.dims;
    if (labels.dims[0] !== n) throw new DataError('INGEST', `${dir}: ${n} ${stem} images but ${labels.dims[0]} labels`);
    const items: SourceItem[] = [];
    for (let i = 0; i < n; i++) {
      maxLabel = Math.max(maxLabel, labels.data[i]);
      items.push({ kind: 'raw', key: `${split}_${String(i).padStart(6, '0')}`, label: labels.data[i], pixels: images.data.subarray(i * h * w, (i + 1) * h * w), h, w, channels: 1 });
    }
    splits[split] = items;
  }
  if (!splits.train) throw new DataError('INGEST', `${dir} has no train-images-idx3-ubyte / train-labels-idx1-ubyte`);
  const names = opts.classNames ?? Array.from({ length: maxLabel + 1 }, (_, i) => String(i));
  return { name: 'idx', classes: names.map((name, id) => ({ id, name })), splits };
}
