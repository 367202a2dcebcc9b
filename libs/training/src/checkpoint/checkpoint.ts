import { createHash } from 'node:crypto';
import type { ObjectStore } from '@tensorfleet/data';
import { TrainingError } from '../errors';

/** The store calls checkpoints need; @tensorfleet/data's ObjectStore has them all. */
export type CheckpointStore = Pick<ObjectStore, 'putObject' | 'getBuffer' | 'exists' | 'list' | 'remove'>;

/**
 * state.json: enough to resume exactly. The named fields are what the worker writes;
 * anything else JSON-serialisable may ride along.
 */
export interface CheckpointState {
  epoch: number;
  step: number;
  /** Every rank's data cursor, index = rank. */
  cursors?: { epoch: number; position: number }[];
  seeds?: Record<string, number>;
  /** Trainer.state(): step, schedule state, optimizer description. */
  trainer?: unknown;
  membership?: unknown;
  [key: string]: unknown;
}

export interface CheckpointParts {
  weights: Uint8Array;
  optimizer: Uint8Array;
  state: CheckpointState;
}

export interface CheckpointPart {
  /** Object key relative to the checkpoint folder. */
  file: string;
  bytes: number;
  sha256: string;
}

export interface CheckpointManifest {
  version: 1;
  jobId: string;
  step: number;
  epoch: number;
  /** Folder key: `checkpoints/<jobId>/<step>`; what loadCheckpoint takes. */
  key: string;
  createdAt: string;
  parts: { weights: CheckpointPart; optimizer: CheckpointPart; state: CheckpointPart };
}

export interface LoadedCheckpoint extends CheckpointParts {
  manifest: CheckpointManifest;
}

const PART_FILES = { weights: 'weights.bin', optimizer: 'optimizer.bin', state: 'state.json' } as const;
type PartName = keyof typeof PART_FILES;
const PART_NAMES = Object.keys(PART_FILES) as PartName[];

export function checkpointPrefix(jobId: string): string {
  if (!jobId || /[/\s]/.test(jobId)) throw new TrainingError('INVALID_OPTIONS', `jobId must be non-empty without '/' or spaces, got ${JSON.stringify(jobId)}`);
  return `checkpoints/${jobId}/`;
}

export function checkpointKey(jobId: string, step: number): string {
  if (!(Number.isInteger(step) && step >= 0)) throw new TrainingError('INVALID_OPTIONS', `checkpoint step must be an integer >= 0, got ${step}`);
  return `${checkpointPrefix(jobId)}${step}`;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/**
 * Writes weights.bin, optimizer.bin and state.json under `checkpoints/<jobId>/<step>/`,
 * then manifest.json (sizes + sha256 of each part) last: the checkpoint exists for
 * readers only once the manifest does. Returns the folder key.
 */
export async function saveCheckpoint(store: CheckpointStore, bucket: string, jobId: string, step: number, parts: CheckpointParts): Promise<string> {
  const key = checkpointKey(jobId, step);
  if (!parts || !(parts.weights instanceof Uint8Array) || !(parts.optimizer instanceof Uint8Array) || typeof parts.state !== 'object') {
    throw new TrainingError('INVALID_OPTIONS', 'saveCheckpoint needs { weights: Uint8Array, optimizer: Uint8Array, state: object }');
  }
  const bodies: Record<PartName, Uint8Array> = {
    weights: parts.weights,
    optimizer: parts.optimizer,
    state: Buffer.from(JSON.stringify(parts.state), 'utf8'),
  };
  // Re-saving a step: uncommit first so no reader sees the old manifest over new parts.
  if (await store.exists(bucket, `${key}/manifest.json`)) await store.remove(bucket, `${key}/manifest.json`);
  await Promise.all(PART_NAMES.map((p) => store.putObject(bucket, `${key}/${PART_FILES[p]}`, bodies[p])));
  const manifest: CheckpointManifest = {
    version: 1,
    jobId,
    step,
    epoch: parts.state.epoch,
    key,
    createdAt: new Date().toISOString(),
    parts: {
      weights: describe('weights', bodies.weights),
      optimizer: describe('optimizer', bodies.optimizer),
      state: describe('state', bodies.state),
    },
  };
  await store.putObject(bucket, `${key}/manifest.json`, Buffer.from(JSON.stringify(manifest, null, 2), 'utf8'));
  return key;
}

function describe(part: PartName, body: Uint8Array): CheckpointPart {
  return { file: PART_FILES[part], bytes: body.byteLength, sha256: sha256(body) };
}

/**
 * Committed checkpoints of a job (those with a readable manifest whose parts are present
 * with the recorded sizes), oldest first. Does not download the parts.
 */
export async function listCheckpoints(store: CheckpointStore, bucket: string, jobId: string): Promise<CheckpointManifest[]> {
  const folders = await scan(store, bucket, jobId);
  const out: CheckpointManifest[] = [];
  for (const f of folders) {
    if (!f.sizes.has('manifest.json')) continue;
    const m = await readManifest(store, bucket, f.key).catch(() => null);
    if (m && m.step === f.step && PART_NAMES.every((p) => f.sizes.get(m.parts[p].file) === m.parts[p].bytes)) out.push(m);
  }
  return out;
}

/**
 * The newest committed checkpoint whose parts pass the size check and (with the default
 * `verify: 'hash'`) the sha256 check; older ones are tried when a newer one fails.
 */
export async function latestCheckpoint(
  store: CheckpointStore,
  bucket: string,
  jobId: string,
  opts: { verify?: 'size' | 'hash' } = {},
): Promise<CheckpointManifest | null> {
  const all = await listCheckpoints(store, bucket, jobId);
  for (let i = all.length - 1; i >= 0; i--) {
    if ((opts.verify ?? 'hash') === 'size') return all[i];
    try {
      await loadParts(store, bucket, all[i]);
      return all[i];
    } catch (err) {
      if (!(err instanceof TrainingError && err.code === 'CHECKPOINT_CORRUPT')) throw err;
    }
  }
  return null;
}

/** Reads a committed checkpoint folder (`manifest.key`), verifying every part's size and sha256. */
export async function loadCheckpoint(store: CheckpointStore, bucket: string, key: string): Promise<LoadedCheckpoint> {
  const folder = key.replace(/\/+$/, '');
  if (!(await store.exists(bucket, `${folder}/manifest.json`))) {
    throw new TrainingError('CHECKPOINT_NOT_FOUND', `no committed checkpoint at ${bucket}/${folder} (manifest.json missing); use latestCheckpoint() to find one`);
  }
  const manifest = await readManifest(store, bucket, folder);
  const { weights, optimizer, state } = await loadParts(store, bucket, manifest);
  let parsed: CheckpointState;
  try {
    parsed = JSON.parse(Buffer.from(state).toString('utf8')) as CheckpointState;
  } catch {
    throw new TrainingError('CHECKPOINT_CORRUPT', `${folder}/state.json is not JSON although its hash matched: it was written corrupt`);
  }
  return { manifest, weights, optimizer, state: parsed };
}

/**
 * Keeps the newest `keep` committed checkpoints and removes the older ones (manifest first,
 * so a half-removed folder reads as uncommitted), plus uncommitted leftovers older than the
 * newest kept one. Returns the removed folder keys.
 */
export async function pruneCheckpoints(store: CheckpointStore, bucket: string, jobId: string, keep: number): Promise<string[]> {
  if (!(Number.isInteger(keep) && keep >= 1)) throw new TrainingError('INVALID_OPTIONS', `keep must be an integer >= 1, got ${keep}`);
  const committed = await listCheckpoints(store, bucket, jobId);
  if (committed.length === 0) return [];
  const kept = new Set(committed.slice(-keep).map((m) => m.step));
  const newestKept = committed[committed.length - 1].step;
  const removed: string[] = [];
  for (const f of await scan(store, bucket, jobId)) {
    if (kept.has(f.step) || f.step > newestKept) continue;
    if (f.sizes.has('manifest.json')) await store.remove(bucket, `${f.key}/manifest.json`);
    for (const file of f.sizes.keys()) if (file !== 'manifest.json') await store.remove(bucket, `${f.key}/${file}`);
    removed.push(f.key);
  }
  return removed;
}

interface Folder {
  step: number;
  key: string;
  /** file name → size */
  sizes: Map<string, number>;
}

async function scan(store: CheckpointStore, bucket: string, jobId: string): Promise<Folder[]> {
  const prefix = checkpointPrefix(jobId);
  const folders = new Map<number, Folder>();
  for (const o of await store.list(bucket, prefix)) {
    const rest = o.key.slice(prefix.length);
    const slash = rest.indexOf('/');
    if (slash <= 0 || !/^\d+$/.test(rest.slice(0, slash))) continue;
    const step = Number(rest.slice(0, slash));
    let f = folders.get(step);
    if (!f) folders.set(step, (f = { step, key: `${prefix}${step}`, sizes: new Map() }));
    f.sizes.set(rest.slice(slash + 1), o.size);
  }
  return [...folders.values()].sort((a, b) => a.step - b.step);
}

async function readManifest(store: CheckpointStore, bucket: string, folder: string): Promise<CheckpointManifest> {
  const raw = await store.getBuffer(bucket, `${folder}/manifest.json`);
  let m: CheckpointManifest;
  try {
    m = JSON.parse(Buffer.from(raw).toString('utf8')) as CheckpointManifest;
  } catch {
    throw new TrainingError('CHECKPOINT_CORRUPT', `${folder}/manifest.json is not JSON`);
  }
  if (m.version !== 1 || !m.parts || PART_NAMES.some((p) => !m.parts[p] || typeof m.parts[p].sha256 !== 'string')) {
    throw new TrainingError('CHECKPOINT_CORRUPT', `${folder}/manifest.json is not a version-1 checkpoint manifest`);
  }
  return m;
}

async function loadParts(store: CheckpointStore, bucket: string, m: CheckpointManifest): Promise<Record<PartName, Uint8Array>> {
  const bodies = await Promise.all(
    PART_NAMES.map(async (p) => {
      const key = `${m.key}/${m.parts[p].file}`;
      const body = await store.getBuffer(bucket, key).catch((err: unknown) => {
        const code = (err as { code?: string })?.code;
        if (code === 'NotFound' || code === 'NoSuchKey') throw new TrainingError('CHECKPOINT_CORRUPT', `${key} is missing`);
        throw err;
      });
      if (body.byteLength !== m.parts[p].bytes) {
        throw new TrainingError('CHECKPOINT_CORRUPT', `${key} has ${body.byteLength} bytes, the manifest says ${m.parts[p].bytes}`);
      }
      if (sha256(body) !== m.parts[p].sha256) throw new TrainingError('CHECKPOINT_CORRUPT', `${key} fails its sha256 check`);
      return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    }),
  );
  return { weights: bodies[0], optimizer: bodies[1], state: bodies[2] };
}
