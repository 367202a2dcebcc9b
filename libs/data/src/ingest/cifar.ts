import { readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../errors';
import { DatasetSource, SourceItem } from './source';

const PIXELS = 32 * 32 * 3;

async function findDir(root: string, names: string[]): Promise<string> {
  for (const n of ['', ...names]) {
    const d = join(root, n);
    if (existsSync(d) && (await readdir(d)).some((f) => f.endsWith('.bin'))) return d;
  }
  throw new DataError('INGEST', `no CIFAR .bin files under ${root} (expected ${names.join(' or ')}/ from the "binary version" archive)`);
}

async function names(path: string, fallback: number): Promise<string[]> {
  if (!existsSync(path)) return Array.from({ length: fallback }, (_, i) => `class-${i}`);
  return (await readFile(path, 'utf8')).split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
}

/** CIFAR records are <label byte(s)><1024 R><1024 G><1024 B>; interleave to RGB. */
function records(buf: Buffer, labelBytes: number, labelAt: number, prefix: string): SourceItem[] {
  const rec = labelBytes + PIXELS;
  if (buf.length % rec !== 0) throw new DataError('INGEST', `${prefix}: ${buf.length} bytes is not a whole number of ${rec}-byte CIFAR records (CIFAR-10 vs -100 mixed up?)`);
  const out: SourceItem[] = [];
  for (let i = 0; i < buf.length / rec; i++) {
    const o = i * rec;
    const px = new Uint8Array(PIXELS);
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) px[p * 3 + c] = buf[o + labelBytes + c * 1024 + p];
    out.push({ kind: 'raw', key: `${prefix}_${String(i).padStart(5, '0')}`, label: buf[o + labelAt], pixels: px, h: 32, w: 32, channels: 3 });
  }
  return out;
}

export async function cifar10Source(root: string): Promise<DatasetSource> {
  const dir = await findDir(root, ['cifar-10-batches-bin']);
  const classNames = await names(join(dir, 'batches.meta.txt'), 10);
  const train: SourceItem[] = [];
  for (let b = 1; b <= 5; b++) {
    const f = join(dir, `data_batch_${b}.bin`);
    if (existsSync(f)) train.push(...records(await readFile(f), 1, 0, `train${b}`));
  }
  const val = existsSync(join(dir, 'test_batch.bin')) ? records(await readFile(join(dir, 'test_batch.bin')), 1, 0, 'test') : [];
  if (train.length === 0) throw new DataError('INGEST', `${dir} has no data_batch_N.bin`);
  return { name: 'cifar10', classes: classNames.slice(0, 10).map((name, id) => ({ id, name })), splits: val.length ? { train, val } : { train } };
}

/** CIFAR-100 with its fine labels (the second label byte). */
export async function cifar100Source(root: string): Promise<DatasetSource> {
  const dir = await findDir(root, ['cifar-100-binary']);
  const classNames = await names(join(dir, 'fine_label_names.txt'), 100);
  if (!existsSync(join(dir, 'train.bin'))) throw new DataError('INGEST', `${dir} has no train.bin`);
  const train = records(await readFile(join(dir, 'train.bin')), 2, 1, 'train');
  const val = existsSync(join(dir, 'test.bin')) ? records(await readFile(join(dir, 'test.bin')), 2, 1, 'test') : [];
  return { name: 'cifar100', classes: classNames.slice(0, 100).map((name, id) => ({ id, name })), splits: val.length ? { train, val } : { train } };
}
