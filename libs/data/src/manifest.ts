import { ObjectStore } from './store/object-store';
import { DataError } from './errors';

export interface ShardInfo {
  /** Full object key in the bucket. */
  key: string;
  samples: number;
  bytes: number;
}

export interface SplitInfo {
  shards: ShardInfo[];
  samples: number;
}

export interface ClassInfo {
  id: number;
  wnid?: string;
  name: string;
}

/**
 * A dataset: tar shards in the WebDataset convention plus this file at `${prefix}/manifest.json`.
 * mean/std/pca are in [0, 1] pixel units (RGB); the loader normalises (x/255 - mean) / std.
 */
export interface DatasetManifest {
  version: 1;
  name: string;
  splits: { [split: string]: SplitInfo };
  classes: ClassInfo[];
  /** [h, w] when every image has the same size. */
  imageSize?: [number, number];
  mean: [number, number, number];
  std: [number, number, number];
  /** Eigen-decomposition of the RGB covariance (AlexNet lighting): eigvec[i] is the i-th eigenvector. */
  pca?: { eigval: number[]; eigvec: number[][] };
  createdAt?: string;
}

export function manifestKey(prefix: string): string {
  return `${trimSlash(prefix)}/manifest.json`;
}

export function trimSlash(prefix: string): string {
  return prefix.replace(/^\/+|\/+$/g, '');
}

/**
 * Manifests this process has read or written, so a ShardLoader can answer batchesPerEpoch()
 * synchronously right after construction. A dataset rewritten at the same prefix by another
 * process is not seen here: pass `manifest` to the loader (or call init()) then.
 */
const known = new Map<string, DatasetManifest>();

function cacheKey(store: ObjectStore, bucket: string, prefix: string): string {
  return `${store.cfg.endPoint}:${store.cfg.port}/${bucket}/${trimSlash(prefix)}`;
}

export function cachedManifest(store: ObjectStore, bucket: string, prefix: string): DatasetManifest | null {
  return known.get(cacheKey(store, bucket, prefix)) ?? null;
}

export async function readManifest(store: ObjectStore, bucket: string, prefix: string): Promise<DatasetManifest> {
  const key = manifestKey(prefix);
  let buf: Buffer;
  try {
    buf = await store.getBuffer(bucket, key);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'NoSuchKey' || code === 'NotFound' || code === 'NoSuchBucket') {
      throw new DataError('NO_MANIFEST', `no dataset at s3://${bucket}/${key}: ingest it first (fleet ingest ...) or check --bucket/--prefix`);
    }
    throw err;
  }
  const m = JSON.parse(buf.toString('utf8')) as DatasetManifest;
  validateManifest(m, `s3://${bucket}/${key}`);
  known.set(cacheKey(store, bucket, prefix), m);
  return m;
}

/** Written last by every writer: a dataset exists only once its manifest does. */
export async function writeManifest(store: ObjectStore, bucket: string, prefix: string, m: DatasetManifest): Promise<void> {
  validateManifest(m, 'manifest to write');
  await store.putObject(bucket, manifestKey(prefix), Buffer.from(JSON.stringify(m, null, 1)), { 'Content-Type': 'application/json' });
  known.set(cacheKey(store, bucket, prefix), JSON.parse(JSON.stringify(m)) as DatasetManifest);
}

export function validateManifest(m: DatasetManifest, where: string): void {
  const bad = (why: string) => new DataError('BAD_MANIFEST', `${where}: ${why}`);
  if (!m || m.version !== 1) throw bad('version must be 1');
  if (!m.splits || typeof m.splits !== 'object') throw bad('splits missing');
  for (const [name, s] of Object.entries(m.splits)) {
    const sum = s.shards.reduce((a, x) => a + x.samples, 0);
    if (sum !== s.samples) throw bad(`split ${name}: shard samples add up to ${sum}, not ${s.samples}`);
  }
  if (!Array.isArray(m.classes) || m.classes.length === 0) throw bad('classes missing');
  if (m.mean?.length !== 3 || m.std?.length !== 3) throw bad('mean/std must have 3 values');
  if (m.std.some((x) => !(x > 0))) throw bad('std must be positive');
}
