import { createHash } from 'node:crypto';
import type { ObjectStore } from '@tensorfleet/data';
import { tensorNames, tensorsFromBytes, tensorsToBytes, type NamedArray } from '@tensorfleet/models';
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

export type CheckpointPartKind = 'weights' | 'optimizer' | 'state';

export interface CheckpointPart {
  /** Object key relative to the checkpoint folder. */
  file: string;
  bytes: number;
  sha256: string;
  kind: CheckpointPartKind;
  /** Names of the tensors in a weights or optimizer part (a tensor container); absent: read it to know. */
  tensors?: string[];
}

/**
 * Version 2: any number of weight and optimizer parts (each rank of a model-parallel run
 * writes its own), so a run can resume on another plan and read only what it holds.
 * Version-1 manifests (one weights, one optimizer part) are read as version 2.
 */
export interface CheckpointManifest {
  version: 2;
  jobId: string;
  step: number;
  epoch: number;
  /** Folder key: `checkpoints/<jobId>/<step>`; what loadCheckpoint takes. */
  key: string;
  createdAt: string;
  parts: CheckpointPart[];
}

export interface LoadedCheckpoint extends CheckpointParts {
  manifest: CheckpointManifest;
}

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
 * Re-saving a step (a run that went back to an earlier checkpoint reaches it again): remove
 * its manifest first, so no reader sees the old manifest over new parts. Before any part of it is written.
 */
export async function uncommitCheckpoint(store: CheckpointStore, bucket: string, jobId: string, step: number): Promise<void> {
  const key = checkpointKey(jobId, step);
  if (await store.exists(bucket, `${key}/manifest.json`)) await store.remove(bucket, `${key}/manifest.json`);
}

export function checkPartFile(file: string): void {
  if (!/^[A-Za-z0-9._-]+$/.test(file) || file === 'manifest.json') throw new TrainingError('INVALID_OPTIONS', `checkpoint part file ${JSON.stringify(file)} must be a plain file name other than manifest.json`);
}

/** Writes one part of checkpoint `step` (not yet committed); returns what its manifest entry says. */
export async function writeCheckpointPart(
  store: CheckpointStore, bucket: string, jobId: string, step: number,
  part: { file: string; kind: CheckpointPartKind; body: Uint8Array; tensors?: string[] },
): Promise<CheckpointPart> {
  checkPartFile(part.file);
  await store.putObject(bucket, `${checkpointKey(jobId, step)}/${part.file}`, part.body);
  return { file: part.file, kind: part.kind, bytes: part.body.byteLength, sha256: sha256(part.body), ...(part.tensors ? { tensors: part.tensors } : {}) };
}

/**
 * Commits checkpoint `step` from parts already written (by this process or others): writes
 * the state (`stateFile`, default state.json), then manifest.json last. Returns the folder
 * key. Parts and state under names of their own (a tag per attempt) leave a committed
 * checkpoint of the same step readable until the new manifest replaces it.
 */
export async function commitCheckpoint(
  store: CheckpointStore, bucket: string, jobId: string, step: number, parts: CheckpointPart[], state: CheckpointState, stateFile = 'state.json',
): Promise<string> {
  const key = checkpointKey(jobId, step);
  if (!parts.some((p) => p.kind === 'weights')) throw new TrainingError('INVALID_OPTIONS', 'a checkpoint needs at least one weights part');
  const files = new Set(parts.map((p) => p.file));
  if (files.size !== parts.length || files.has(stateFile)) throw new TrainingError('INVALID_OPTIONS', `checkpoint parts need distinct file names other than ${stateFile}`);
  const statePart = await writeCheckpointPart(store, bucket, jobId, step, { file: stateFile, kind: 'state', body: Buffer.from(JSON.stringify(state), 'utf8') });
  const manifest: CheckpointManifest = { version: 2, jobId, step, epoch: state.epoch, key, createdAt: new Date().toISOString(), parts: [...parts, statePart] };
  await store.putObject(bucket, `${key}/manifest.json`, Buffer.from(JSON.stringify(manifest, null, 2), 'utf8'));
  return key;
}

/**
 * Writes weights.bin, optimizer.bin and state.json under `checkpoints/<jobId>/<step>/`,
 * then manifest.json (sizes + sha256 of each part) last: the checkpoint exists for
 * readers only once the manifest does. Returns the folder key. (One writer; a model-parallel
 * run writes a part per rank with writeCheckpointPart and commits with commitCheckpoint.)
 */
export async function saveCheckpoint(store: CheckpointStore, bucket: string, jobId: string, step: number, parts: CheckpointParts): Promise<string> {
  checkpointKey(jobId, step);
  if (!parts || !(parts.weights instanceof Uint8Array) || !(parts.optimizer instanceof Uint8Array) || typeof parts.state !== 'object') {
    throw new TrainingError('INVALID_OPTIONS', 'saveCheckpoint needs { weights: Uint8Array, optimizer: Uint8Array, state: object }');
  }
  await uncommitCheckpoint(store, bucket, jobId, step);
  const written = await Promise.all([
    writeCheckpointPart(store, bucket, jobId, step, { file: 'weights.bin', kind: 'weights', body: parts.weights, tensors: namesOf(parts.weights) }),
    writeCheckpointPart(store, bucket, jobId, step, { file: 'optimizer.bin', kind: 'optimizer', body: parts.optimizer, tensors: namesOf(parts.optimizer) }),
  ]);
  return commitCheckpoint(store, bucket, jobId, step, written, parts.state);
}

/** The tensor names of a tensor container, or undefined for other bytes (kept opaque). */
function namesOf(bytes: Uint8Array): string[] | undefined {
  try {
    return tensorNames(bytes);
  } catch {
    return undefined;
  }
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
    if (m && m.step === f.step && m.parts.every((p) => f.sizes.get(p.file) === p.bytes)) out.push(m);
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

/**
 * Reads a committed checkpoint folder (`manifest.key`), verifying every part's size and
 * sha256: the whole model's weights (the parts of every rank in one tensor container), the
 * optimizer's, and state.json.
 */
export async function loadCheckpoint(store: CheckpointStore, bucket: string, key: string): Promise<LoadedCheckpoint> {
  const { manifest, bodies } = await readCommitted(store, bucket, key, () => true);
  const merge = (kind: CheckpointPartKind) => {
    const mine = manifest.parts.map((p, i) => [p, bodies[i]] as const).filter(([p]) => p.kind === kind).map(([, b]) => b!);
    return mine.length === 1 ? mine[0] : tensorsToBytes(Object.assign({}, ...mine.map((b) => tensorsFromBytes(b))));
  };
  return { manifest, weights: merge('weights'), optimizer: merge('optimizer'), state: parseState(manifest, bodies[manifest.parts.findIndex((p) => p.kind === 'state')]!) };
}

/**
 * The tensors of a committed checkpoint that one rank needs, by name, downloading only the
 * parts that hold them (parts whose manifest entry lists no names are read to find out).
 * Every wanted name must be there: a model-parallel run resumes on any plan this way.
 */
export async function loadCheckpointTensors(
  store: CheckpointStore, bucket: string, key: string, want: { weights: string[]; optimizer: string[] },
): Promise<{ manifest: CheckpointManifest; state: CheckpointState; weights: Record<string, NamedArray>; optimizer: Record<string, NamedArray> }> {
  const wanted = { weights: new Set(want.weights), optimizer: new Set(want.optimizer) } as Record<CheckpointPartKind, Set<string>>;
  const { manifest, bodies } = await readCommitted(store, bucket, key, (p) => p.kind === 'state' || !p.tensors || p.tensors.some((t) => wanted[p.kind].has(t)));
  const pick = (kind: 'weights' | 'optimizer') => {
    const out: Record<string, NamedArray> = {};
    manifest.parts.forEach((p, i) => {
      if (p.kind !== kind || !bodies[i]) return;
      for (const [name, t] of Object.entries(tensorsFromBytes(bodies[i]!))) if (wanted[kind].has(name)) out[name] = t;
    });
    const missing = [...wanted[kind]].filter((n) => !(n in out));
    if (missing.length) {
      throw new TrainingError('STATE_MISMATCH', `checkpoint ${manifest.key} has no ${kind === 'weights' ? 'weight' : 'optimizer slot'} ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` (+${missing.length - 3})` : ''}: was it written by this model and optimizer?`);
    }
    return out;
  };
  return { manifest, state: parseState(manifest, bodies[manifest.parts.findIndex((p) => p.kind === 'state')]!), weights: pick('weights'), optimizer: pick('optimizer') };
}

async function readCommitted(store: CheckpointStore, bucket: string, key: string, wanted: (p: CheckpointPart) => boolean): Promise<{ manifest: CheckpointManifest; bodies: (Uint8Array | null)[] }> {
  const folder = key.replace(/\/+$/, '');
  if (!(await store.exists(bucket, `${folder}/manifest.json`))) {
    throw new TrainingError('CHECKPOINT_NOT_FOUND', `no committed checkpoint at ${bucket}/${folder} (manifest.json missing); use latestCheckpoint() to find one`);
  }
  const manifest = await readManifest(store, bucket, folder);
  return { manifest, bodies: await loadParts(store, bucket, manifest, wanted) };
}

function parseState(manifest: CheckpointManifest, body: Uint8Array): CheckpointState {
  try {
    return JSON.parse(Buffer.from(body).toString('utf8')) as CheckpointState;
  } catch {
    throw new TrainingError('CHECKPOINT_CORRUPT', `${manifest.key}/state.json is not JSON although its hash matched: it was written corrupt`);
  }
}

/**
 * Keeps the newest `keep` committed checkpoints and removes the older ones (manifest first,
 * so a half-removed folder reads as uncommitted), plus uncommitted leftovers older than the
 * newest kept one: whole folders, and in the older kept folders the files their manifest
 * does not name (an attempt killed half-way at a step that was later committed). Returns
 * the removed folder keys.
 */
export async function pruneCheckpoints(store: CheckpointStore, bucket: string, jobId: string, keep: number): Promise<string[]> {
  if (!(Number.isInteger(keep) && keep >= 1)) throw new TrainingError('INVALID_OPTIONS', `keep must be an integer >= 1, got ${keep}`);
  const committed = await listCheckpoints(store, bucket, jobId);
  if (committed.length === 0) return [];
  const kept = new Set(committed.slice(-keep).map((m) => m.step));
  const newestKept = committed[committed.length - 1].step;
  const removed: string[] = [];
  const manifests = new Map(committed.map((m) => [m.step, m]));
  for (const f of await scan(store, bucket, jobId)) {
    if (f.step > newestKept) continue;
    if (kept.has(f.step)) {
      if (f.step === newestKept) continue;
      const named = new Set(['manifest.json', ...manifests.get(f.step)!.parts.map((p) => p.file)]);
      for (const file of f.sizes.keys()) if (!named.has(file)) await store.remove(bucket, `${f.key}/${file}`);
      continue;
    }
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
  let m: CheckpointManifest | (Omit<CheckpointManifest, 'version' | 'parts'> & { version: 1; parts: Record<CheckpointPartKind, CheckpointPart> });
  try {
    m = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch {
    throw new TrainingError('CHECKPOINT_CORRUPT', `${folder}/manifest.json is not JSON`);
  }
  if (m && m.version === 1 && m.parts && typeof m.parts === 'object') {
    const v1 = m.parts;
    const kinds: CheckpointPartKind[] = ['weights', 'optimizer', 'state'];
    if (kinds.some((k) => !v1[k] || typeof v1[k].sha256 !== 'string')) throw new TrainingError('CHECKPOINT_CORRUPT', `${folder}/manifest.json is not a usable version-1 checkpoint manifest`);
    return { ...m, version: 2, parts: kinds.map((kind) => ({ ...v1[kind], kind })) };
  }
  const parts = (m as CheckpointManifest | null)?.parts;
  if (!m || m.version !== 2 || !Array.isArray(parts) || parts.some((p) => !p || typeof p.sha256 !== 'string' || typeof p.file !== 'string' || !['weights', 'optimizer', 'state'].includes(p.kind))
    || parts.filter((p) => p.kind === 'state').length !== 1) {
    throw new TrainingError('CHECKPOINT_CORRUPT', `${folder}/manifest.json is not a version-1 or version-2 checkpoint manifest`);
  }
  return m as CheckpointManifest;
}

/** The parts `wanted` selects, each checked for size and sha256 (null for the others). */
async function loadParts(store: CheckpointStore, bucket: string, m: CheckpointManifest, wanted: (p: CheckpointPart) => boolean = () => true): Promise<(Uint8Array | null)[]> {
  return Promise.all(
    m.parts.map(async (part) => {
      if (!wanted(part)) return null;
      const key = `${m.key}/${part.file}`;
      const body = await store.getBuffer(bucket, key).catch((err: unknown) => {
        const code = (err as { code?: string })?.code;
        if (code === 'NotFound' || code === 'NoSuchKey') throw new TrainingError('CHECKPOINT_CORRUPT', `${key} is missing`);
        throw err;
      });
      if (body.byteLength !== part.bytes) {
        throw new TrainingError('CHECKPOINT_CORRUPT', `${key} has ${body.byteLength} bytes, the manifest says ${part.bytes}`);
      }
      if (sha256(body) !== part.sha256) throw new TrainingError('CHECKPOINT_CORRUPT', `${key} fails its sha256 check`);
      return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
    }),
  );
}
