import { SplitInfo } from '../manifest';
import { Rng, hashSeed } from '../rng';

/** Which samples a rank reads in an epoch, in order, before its shuffle buffer. */
export interface RankPlan {
  /** Shard indices (into split.shards) this rank reads, in stream order. */
  shards: number[];
  /** Global slot ids (shard offset + index in shard) in stream order. */
  slots: number[];
  /** Slot ids after the shuffle buffer: the order samples come out in. */
  order: number[];
}

export interface PlanOptions {
  seed: number;
  epoch: number;
  rank: number;
  worldSize: number;
  shuffle: boolean;
  shuffleBuffer: number;
  /** 'shard' (default): whole shards per rank; 'sample': every rank reads every shard and takes every worldSize-th sample. */
  stride?: 'shard' | 'sample';
}

export function shardOffsets(split: SplitInfo): number[] {
  const off: number[] = [];
  let n = 0;
  for (const s of split.shards) {
    off.push(n);
    n += s.samples;
  }
  return off;
}

/** The permutation of shard indices for an epoch, the same on every rank. */
export function shardPermutation(numShards: number, seed: number, epoch: number, shuffle: boolean): number[] {
  const p = Array.from({ length: numShards }, (_, i) => i);
  return shuffle ? new Rng(hashSeed(seed, epoch, 0x5a4d)).shuffle(p) : p;
}

/**
 * Whole shards round-robin over the epoch's permutation when there are at least worldSize
 * shards; otherwise every rank reads every shard and takes every worldSize-th sample.
 * Either way ranks are disjoint and together cover the split.
 */
export function planRank(split: SplitInfo, o: PlanOptions): RankPlan {
  const perm = shardPermutation(split.shards.length, o.seed, o.epoch, o.shuffle);
  const off = shardOffsets(split);
  const slotsOf = (s: number) => Array.from({ length: split.shards[s].samples }, (_, i) => off[s] + i);
  let shards: number[];
  let slots: number[];
  if (byShard(split, o.worldSize, o.stride ?? 'shard')) {
    shards = perm.filter((_, i) => i % o.worldSize === o.rank);
    slots = shards.flatMap(slotsOf);
  } else {
    shards = perm;
    slots = perm.flatMap(slotsOf).filter((_, i) => i % o.worldSize === o.rank);
  }
  const order = o.shuffle ? shuffleBufferOrder(slots, o.shuffleBuffer, new Rng(hashSeed(o.seed, o.epoch, o.rank, o.worldSize, 0xb0f))) : slots;
  return { shards, slots, order };
}

/** The order a streaming shuffle buffer of `size` emits `stream` in (WebDataset-style). */
export function shuffleBufferOrder<T>(stream: T[], size: number, rng: Rng): T[] {
  const buf: T[] = [];
  const out: T[] = [];
  for (const x of stream) {
    if (buf.length < size) {
      buf.push(x);
      continue;
    }
    const j = rng.int(size);
    out.push(buf[j]);
    buf[j] = x;
  }
  while (buf.length) {
    const j = rng.int(buf.length);
    out.push(buf[j]);
    buf[j] = buf[buf.length - 1];
    buf.pop();
  }
  return out;
}

/**
 * A lower bound on any rank's samples in any epoch, from the manifest alone: with whole
 * shards every rank gets at least floor(S/n) shards, so at least the floor(S/n) smallest.
 */
export function minRankSamples(split: SplitInfo, worldSize: number, stride: 'shard' | 'sample' = 'shard'): number {
  if (byShard(split, worldSize, stride)) {
    const sizes = split.shards.map((s) => s.samples).sort((a, b) => a - b);
    return sizes.slice(0, Math.floor(sizes.length / worldSize)).reduce((a, x) => a + x, 0);
  }
  return Math.floor(split.samples / worldSize);
}

function byShard(split: SplitInfo, worldSize: number, stride: 'shard' | 'sample'): boolean {
  return stride === 'shard' && split.shards.length >= worldSize;
}

export interface GlobalPlanOptions {
  seed: number;
  epoch: number;
  shuffle: boolean;
  shuffleBuffer: number;
}

/**
 * The epoch's order of every slot of the split, the same whatever the world size (the order
 * Horovod's elastic sampler and Determined keep): the epoch's shard permutation, streamed
 * through one shuffle buffer seeded by (seed, epoch) alone. Elastic runs cut it into global
 * batches, so a position in it ("samples consumed") means the same on any number of replicas.
 */
export function globalOrder(split: SplitInfo, o: GlobalPlanOptions): { shards: number[]; order: number[] } {
  const shards = shardPermutation(split.shards.length, o.seed, o.epoch, o.shuffle);
  const off = shardOffsets(split);
  const stream = shards.flatMap((s) => Array.from({ length: split.shards[s].samples }, (_, i) => off[s] + i));
  const order = o.shuffle ? shuffleBufferOrder(stream, o.shuffleBuffer, new Rng(hashSeed(o.seed, o.epoch, 0x9106a1))) : stream;
  return { shards, order };
}

/** Where a rank's slice of a global batch sits: global batch b, replica r of n, B = G / n each. */
export interface GlobalSlice {
  rank: number;
  worldSize: number;
  /** Samples per replica per step (the global batch is batchSize × worldSize). */
  batchSize: number;
}

/** Whole global batches in an epoch of the split (the last partial one is dropped). */
export function globalBatchesPerEpoch(split: SplitInfo, globalBatch: number): number {
  return Math.floor(split.samples / globalBatch);
}

/**
 * A rank's part of the global order: of every global batch (a contiguous run of G slots), the
 * rank-th slice of B = G / worldSize. Ranks are disjoint and, over the epoch's whole batches,
 * cover the order once; any world size cuts the same batches. `shards` lists every shard (each
 * rank reads them all, keeping its slots).
 */
export function planGlobalRank(split: SplitInfo, o: GlobalPlanOptions & GlobalSlice): RankPlan {
  const { shards, order } = globalOrder(split, o);
  const G = o.batchSize * o.worldSize;
  const n = globalBatchesPerEpoch(split, G);
  const slots: number[] = [];
  for (let b = 0; b < n; b++) {
    const start = b * G + o.rank * o.batchSize;
    for (let i = 0; i < o.batchSize; i++) slots.push(order[start + i]);
  }
  // Already in the global order: no shuffle buffer of the rank's own.
  return { shards, slots, order: slots };
}

/** The global-order index of a rank's p-th sample (planGlobalRank): what seeds its augmentation. */
export function globalIndexOf(p: number, s: GlobalSlice): number {
  const b = Math.floor(p / s.batchSize);
  return b * s.batchSize * s.worldSize + s.rank * s.batchSize + (p % s.batchSize);
}
