import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { extname } from 'node:path';
import sharp from 'sharp';
import { ObjectStore, S3Config } from '../store/object-store';
import { DatasetManifest, SplitInfo, writeManifest, trimSlash } from '../manifest';
import { ShardWriter } from '../shards/shard-writer';
import { PixelStats } from '../stats/pixel-stats';
import { Rng, hashSeed } from '../rng';
import { DataError, badOption } from '../errors';
import { encodeRaw } from '../synthetic';
import { DatasetSource, SourceItem } from './source';
import { imagenetSource, ImageNetOptions } from './imagenet';
import { cifar10Source, cifar100Source } from './cifar';
import { idxSource } from './idx';
import { folderSource } from './folder';

export type IngestFormat = 'imagenet' | 'cifar10' | 'cifar100' | 'idx' | 'folder';
export const INGEST_FORMATS: IngestFormat[] = ['imagenet', 'cifar10', 'cifar100', 'idx', 'folder'];

export interface IngestProgress {
  split: string;
  /** Images written so far (all splits). */
  images: number;
  /** Of `total`. */
  total: number;
  /** Encoded image bytes written so far. */
  bytes: number;
  imagesPerSec: number;
  mbPerSec: number;
  /** Unreadable images skipped. */
  skipped: number;
  /** Shards found already uploaded whole (restarted ingestion) and not uploaded again. */
  shardsReused: number;
}

export interface IngestOptions extends ImageNetOptions {
  format: IngestFormat;
  /** Dataset root on local disk (or `source`). */
  path?: string;
  /** Alias of path. */
  source?: string;
  /** Where to write: a store, or the S3 config to open one. */
  store?: ObjectStore;
  s3?: S3Config;
  bucket: string;
  prefix: string;
  /** Manifest name. Default the format's (imagenet, cifar10, ...). */
  name?: string;
  /** Target shard size. Default 256 MB. */
  shardBytes?: number;
  /** Also cap samples per shard. Default unlimited. */
  samplesPerShard?: number;
  /** Uploads in flight. Default 3. */
  uploads?: number;
  /** Images read and validated at once. Default 2 × cores. */
  concurrency?: number;
  /** Seed of the order samples are shuffled into before sharding. Default 0. */
  seed?: number;
  /** Train images fully decoded for mean/std/PCA. Default 2000. */
  statsImages?: number;
  /** Only the first N images per split (after shuffling). Default all. */
  limit?: number;
  /** Called at most every 200 ms and once at the end. */
  onProgress?: (p: IngestProgress) => void;
  /** Each unreadable image, with why; it is left out of the dataset. */
  onSkip?: (file: string, reason: string) => void;
}

export interface IngestReport {
  images: number;
  bytes: number;
  seconds: number;
  skipped: { file: string; reason: string }[];
  shardsReused: number;
}

/** The manifest as written, with a report of this run attached (not stored in the manifest). */
export type IngestResult = DatasetManifest & { ingest: IngestReport };

const DEFAULTS = { shardBytes: 256 * 1024 * 1024, samplesPerShard: Infinity, uploads: 3, concurrency: 2 * cpus().length, seed: 0, statsImages: 2000, limit: Infinity };
/** Pixels sampled per fully decoded image for the statistics. */
const STAT_PIXELS = 20000;

export async function openSource(format: IngestFormat, path: string, o: ImageNetOptions = {}): Promise<DatasetSource> {
  switch (format) {
    case 'imagenet':
      return imagenetSource(path, o);
    case 'cifar10':
      return cifar10Source(path);
    case 'cifar100':
      return cifar100Source(path);
    case 'idx':
      return idxSource(path);
    case 'folder':
      return folderSource(path);
    default:
      throw badOption('format', format, `one of ${INGEST_FORMATS.join(', ')}`);
  }
}

interface Prepared {
  item: SourceItem;
  /** Decoded pixels for the statistics, added in list order so the sums (and the manifest) are deterministic. */
  stats?: { px: Uint8Array; channels: number; step: number };
  image: Buffer | null;
  ext: string;
  reason?: string;
  size?: [number, number];
}

/**
 * Reads a dataset from local disk into tar shards + manifest. Restartable: shard contents are
 * deterministic, so a rerun skips every shard already uploaded whole; the manifest goes last.
 */
export async function ingestDataset(opts: IngestOptions): Promise<IngestResult> {
  // An option given as undefined (a CLI flag not passed) keeps its default.
  const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) as IngestOptions;
  const o = { ...DEFAULTS, ...given, path: opts.path ?? opts.source };
  if (!o.path) throw badOption('path', o.path, 'the dataset root on local disk');
  if (!INGEST_FORMATS.includes(o.format)) throw badOption('format', o.format, `one of ${INGEST_FORMATS.join(', ')}`);
  if (!o.bucket) throw badOption('bucket', o.bucket, 'a bucket name');
  if (!trimSlash(o.prefix ?? '')) throw badOption('prefix', o.prefix, 'a non-empty key prefix');
  if (!(o.concurrency >= 1)) throw badOption('concurrency', o.concurrency, 'at least 1');
  if (!(o.shardBytes >= 1)) throw badOption('shardBytes', o.shardBytes, 'a positive number of bytes');
  if (!(o.samplesPerShard >= 1)) throw badOption('samplesPerShard', o.samplesPerShard, 'at least 1');
  const store = o.store ?? (o.s3 ? new ObjectStore(o.s3) : null);
  if (!store) throw badOption('store', undefined, 'an ObjectStore or an s3 config');
  const source = await openSource(o.format, o.path, o);
  await store.ensureBucket(o.bucket);

  const t0 = Date.now();
  const stats = new PixelStats();
  const sizes = new Set<string>();
  const skipped: { file: string; reason: string }[] = [];
  let images = 0;
  let bytes = 0;
  let shardsReused = 0;
  let statsDone = 0;
  let lastReport = 0;
  const splitNames = Object.keys(source.splits).sort((a, b) => (a === 'train' ? -1 : b === 'train' ? 1 : a.localeCompare(b)));
  const lists = Object.fromEntries(splitNames.map((s, i) => [s, new Rng(hashSeed(o.seed, i, 0x16e5)).shuffle(source.splits[s].slice()).slice(0, o.limit)]));
  const total = Object.values(lists).reduce((a, l) => a + l.length, 0);
  const report = (split: string, force = false) => {
    const now = Date.now();
    if (!o.onProgress || (!force && now - lastReport < 200)) return;
    lastReport = now;
    const sec = Math.max(1e-3, (now - t0) / 1000);
    o.onProgress({ split, images, total, bytes, imagesPerSec: images / sec, mbPerSec: bytes / 1e6 / sec, skipped: skipped.length, shardsReused });
  };

  const prepare = async (item: SourceItem, withStats: boolean): Promise<Prepared> => {
    if (item.kind === 'raw') {
      const st = withStats ? { px: item.pixels, channels: item.channels, step: Math.max(1, Math.floor((item.h * item.w) / STAT_PIXELS)) } : undefined;
      sizes.add(`${item.h}x${item.w}`);
      return { item, image: await encodeRaw(item.pixels, item.h, item.w, item.channels, 'png'), ext: 'png', size: [item.h, item.w], stats: st };
    }
    try {
      const image = await readFile(item.path);
      const meta = await sharp(image).metadata();
      let st: Prepared['stats'];
      if (withStats) {
        // A full decode validates the whole file and feeds the statistics; without colour management,
        // as the loader decodes (augment.ts), so mean/std describe the pixels it produces.
        const { data, info } = await sharp(image, { ignoreIcc: true }).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
        st = { px: data, channels: info.channels, step: Math.max(1, Math.floor((info.width * info.height) / STAT_PIXELS)) };
      } else {
        // Shrink-on-load still entropy-decodes every scan, so truncated files fail here too.
        await sharp(image).resize(32, 32, { fit: 'inside' }).raw().toBuffer();
      }
      sizes.add(`${meta.height}x${meta.width}`);
      const e = extname(item.path).slice(1).toLowerCase();
      return { item, image, ext: e === 'jpeg' ? 'jpg' : e, size: [meta.height ?? 0, meta.width ?? 0], stats: st };
    } catch (err) {
      return { item, image: null, ext: '', reason: (err as Error).message };
    }
  };

  const splits: Record<string, SplitInfo> = {};
  for (const split of splitNames) {
    const list = lists[split];
    if (list.length === 0) continue;
    const writer = new ShardWriter(store, {
      bucket: o.bucket, prefix: o.prefix, split, targetBytes: o.shardBytes, maxSamples: o.samplesPerShard, concurrency: o.uploads,
      onShard: (_s, reused) => { if (reused) shardsReused++; },
    });
    // Read and validate up to `concurrency` images ahead, write them in list order.
    const window: Promise<Prepared>[] = [];
    let next = 0;
    const launch = () => {
      const item = list[next++];
      const withStats = split === splitNames[0] && statsDone < o.statsImages;
      if (withStats) statsDone++;
      window.push(prepare(item, withStats));
    };
    while (next < list.length && window.length < o.concurrency) launch();
    while (window.length) {
      const p = await window.shift()!;
      if (next < list.length) launch();
      if (!p.image) {
        const file = p.item.kind === 'file' ? p.item.path : p.item.key;
        skipped.push({ file, reason: p.reason ?? 'unreadable' });
        o.onSkip?.(file, p.reason ?? 'unreadable');
        continue;
      }
      if (p.stats) stats.add(p.stats.px, p.stats.channels, p.stats.step);
      await writer.add({ key: p.item.key, image: p.image, ext: p.ext, label: p.item.label });
      images++;
      bytes += p.image.length;
      report(split);
    }
    const shards = await writer.close();
    splits[split] = { shards, samples: shards.reduce((a, s) => a + s.samples, 0) };
    report(split, true);
  }
  if (!splits[splitNames[0]]) throw new DataError('INGEST', `no readable images found under ${o.path}`);
  const one = sizes.size === 1 ? ([...sizes][0].split('x').map(Number) as [number, number]) : undefined;
  const manifest: DatasetManifest = {
    version: 1,
    name: o.name ?? source.name,
    splits,
    classes: source.classes,
    ...(one ? { imageSize: one } : {}),
    mean: stats.mean(),
    std: stats.std(),
    pca: stats.pca(),
  };
  await writeManifest(store, o.bucket, o.prefix, manifest);
  return { ...manifest, ingest: { images, bytes, seconds: (Date.now() - t0) / 1000, skipped, shardsReused } };
}
