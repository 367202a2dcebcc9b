import { ObjectStore } from '../store/object-store';
import { DatasetManifest, SplitInfo, readManifest, cachedManifest } from '../manifest';
import { DataError, badOption } from '../errors';
import { hashSeed } from '../rng';
import { Pipeline, PIPELINES, cropsPerImage } from './augment';
import { DecodePool, DecodeWorkerError, defaultDecodeThreads } from './decode-pool';
import { planRank, minRankSamples, shardOffsets, planGlobalRank, globalBatchesPerEpoch, globalIndexOf } from './plan';
import { ShardReader } from './shard-reader';

/**
 * position = this rank's sample slots consumed in the epoch (corrupt ones included); with
 * order 'global', the samples of the epoch's global order consumed by all ranks together
 * (whole global batches), which means the same at any world size.
 */
export interface LoaderCursor {
  epoch: number;
  position: number;
  /** Batches yielded so far in the epoch; derived as position / batchSize when absent. */
  batches?: number;
}

export interface Batch {
  /** NHWC, normalised with the manifest mean/std; with crops > 1, each image's crops are consecutive ([N, crops, H, W, C]). */
  images: Float32Array;
  /** Crops per image: 10 for pipeline 'tencrop' (average the predictions over them); 1 (the loader sets it) when absent. */
  crops?: number;
  labels: Int32Array;
  size: number;
  /** Where a loader resumes to yield the batches after this one. */
  cursor: LoaderCursor;
  /** Sample keys, in batch order. */
  keys: string[];
}

export interface ShardLoaderOptions {
  store: ObjectStore;
  bucket: string;
  prefix: string;
  split: string;
  rank: number;
  worldSize: number;
  seed: number;
  batchSize: number;
  pipeline: Pipeline;
  inputSize: number;
  /** Drop the last partial batch. Default true for 'train', false otherwise. */
  dropLast?: boolean;
  /** Batches decoded ahead of the consumer. Default 2. */
  prefetch?: number;
  /** Resume point; applies to batches(cursor.epoch). */
  cursor?: LoaderCursor;
  /** worker_threads decoding; 0 decodes in this thread. Default cores - 1, at least 1. */
  decodeThreads?: number;
  /** Shuffle shard order and samples. Default true for 'train', false otherwise. */
  shuffle?: boolean;
  /**
   * 'shard': each rank reads whole shards (round-robin over the epoch's permutation); ranks with more
   * samples stop at the smallest rank's share. 'sample': every rank reads every shard and keeps every
   * worldSize-th sample, so at most worldSize-1 samples go unused (evaluation sees the whole split)
   * at the cost of each rank downloading it all. Default 'shard' for 'train', 'sample' otherwise.
   */
  stride?: 'shard' | 'sample';
  /** Shuffle buffer, in samples. Default 1000. */
  shuffleBuffer?: number;
  /**
   * 'rank' (default): each rank's own stream (stride above) through its own shuffle buffer.
   * 'global' (elastic runs): one order of the epoch for any world size (plan.ts globalOrder),
   * cut into global batches of batchSize × worldSize of which this rank takes its slice; the
   * cursor's position counts global samples, so a run resumed on another world size sees each
   * remaining sample once. Every rank reads every shard; a corrupt sample makes its rank's
   * batch one smaller (nothing takes its place); needs dropLast.
   */
  order?: 'rank' | 'global';
  /** The dataset's manifest. Default: the one this process last read or wrote for bucket/prefix, else read by init() / batches(). */
  manifest?: DatasetManifest;
}

export interface LoaderStats {
  /** Samples yielded. */
  samples: number;
  /** Samples skipped as missing or undecodable. */
  corrupt: number;
  /** The first corrupt sample keys (at most 100). */
  corruptKeys: string[];
  /** Shards that ended early or had a bad header. */
  corruptShards: string[];
  bytesRead: number;
  /** Decode threads that died and were replaced (their samples were decoded again). */
  decodeThreadRestarts: number;
  /** CPU seconds of the decode threads (their start-up, libjpeg-turbo decoding and resizing included; not libvips' own threads), summed over finished epochs. */
  decodeThreadCpuSeconds: number;
}

const MAX_CORRUPT_KEYS = 100;

/**
 * Streams one rank's part of a split as augmented, normalised batches. The batches depend
 * only on (manifest, seed, epoch, rank, worldSize, options): any process regenerates them
 * bit for bit, and every rank yields exactly batchesPerEpoch() batches per epoch.
 */
export class ShardLoader {
  private readonly o: Required<Omit<ShardLoaderOptions, 'cursor' | 'manifest'>> & Pick<ShardLoaderOptions, 'cursor' | 'manifest'>;
  private readonly global: boolean;
  private manifest: DatasetManifest | null;
  readonly stats: LoaderStats = { samples: 0, corrupt: 0, corruptKeys: [], corruptShards: [], bytesRead: 0, decodeThreadRestarts: 0, decodeThreadCpuSeconds: 0 };
  private pool: DecodePool | null = null;
  /** images arrays handed back by recycle(), reused for later batches of the same size. */
  private readonly spare: Float32Array[] = [];

  constructor(opts: ShardLoaderOptions) {
    const train = opts.split === 'train';
    this.o = { dropLast: train, prefetch: 2, decodeThreads: defaultDecodeThreads(), shuffle: train, shuffleBuffer: 1000, stride: train ? 'shard' : 'sample', order: 'rank', ...opts };
    const o = this.o;
    if (o.order !== 'rank' && o.order !== 'global') throw badOption('order', o.order, "'rank' or 'global'");
    this.global = o.order === 'global';
    if (this.global && !o.dropLast) throw badOption('dropLast', o.dropLast, "true with order 'global' (whole global batches only)");
    if (!o.store) throw badOption('store', o.store, 'an ObjectStore');
    if (!Number.isInteger(o.worldSize) || o.worldSize < 1) throw badOption('worldSize', o.worldSize, 'an integer >= 1');
    if (!Number.isInteger(o.rank) || o.rank < 0 || o.rank >= o.worldSize) throw badOption('rank', o.rank, `an integer in [0, ${o.worldSize})`);
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw badOption('batchSize', o.batchSize, 'an integer >= 1');
    if (!Number.isInteger(o.inputSize) || o.inputSize < 1) throw badOption('inputSize', o.inputSize, 'an integer >= 1');
    if (!PIPELINES.includes(o.pipeline)) throw badOption('pipeline', o.pipeline, `one of ${PIPELINES.join(', ')}`);
    if (!Number.isInteger(o.prefetch) || o.prefetch < 0) throw badOption('prefetch', o.prefetch, 'an integer >= 0');
    if (!Number.isInteger(o.decodeThreads) || o.decodeThreads < 0) throw badOption('decodeThreads', o.decodeThreads, 'an integer >= 0');
    if (o.stride !== 'shard' && o.stride !== 'sample') throw badOption('stride', o.stride, "'shard' or 'sample'");
    if (!Number.isInteger(o.shuffleBuffer) || o.shuffleBuffer < 1) throw badOption('shuffleBuffer', o.shuffleBuffer, 'an integer >= 1');
    if (!Number.isInteger(o.seed)) throw badOption('seed', o.seed, 'an integer');
    if (o.cursor && !(Number.isInteger(o.cursor.epoch) && Number.isInteger(o.cursor.position) && o.cursor.position >= 0)) {
      throw badOption('cursor', o.cursor, '{ epoch, position } with non-negative integers');
    }
    if (this.global && o.cursor && o.cursor.position % (o.batchSize * o.worldSize) !== 0) {
      throw badOption('cursor.position', o.cursor.position, `a multiple of the global batch ${o.batchSize * o.worldSize} (batchSize × worldSize): global samples consumed in whole steps`);
    }
    this.manifest = o.manifest ?? cachedManifest(o.store, o.bucket, o.prefix);
    if (this.manifest) this.splitInfo(this.manifest);
  }

  /** Reads the manifest unless given or already known in this process; needed before batchesPerEpoch() only then. */
  async init(): Promise<DatasetManifest> {
    if (!this.manifest) {
      const m = await readManifest(this.o.store, this.o.bucket, this.o.prefix);
      this.splitInfo(m);
      this.manifest = m;
    }
    return this.manifest;
  }

  private splitInfo(m: DatasetManifest): SplitInfo {
    const s = m.splits[this.o.split];
    if (!s) throw new DataError('BAD_OPTIONS', `dataset ${m.name} has no split '${this.o.split}' (it has ${Object.keys(m.splits).join(', ')})`);
    if (this.global && globalBatchesPerEpoch(s, this.o.batchSize * this.o.worldSize) === 0) {
      throw new DataError('BAD_OPTIONS', `split '${this.o.split}' has ${s.samples} samples, fewer than one global batch of ${this.o.batchSize * this.o.worldSize}: use a smaller batch`);
    }
    if (!this.global && minRankSamples(s, this.o.worldSize, this.o.stride) === 0) {
      throw new DataError('BAD_OPTIONS', `split '${this.o.split}' (${s.samples} samples in ${s.shards.length} shards) cannot feed ${this.o.worldSize} ranks: use fewer ranks`);
    }
    return s;
  }

  /** The same on every rank: the smallest rank's share, so synchronous ranks step together. */
  batchesPerEpoch(): number {
    if (!this.manifest) throw new DataError('BAD_OPTIONS', `the manifest of s3://${this.o.bucket}/${this.o.prefix} is not loaded in this process: await loader.init() (or readManifest, or pass the manifest option) before batchesPerEpoch()`);
    if (this.global) return globalBatchesPerEpoch(this.splitInfo(this.manifest), this.o.batchSize * this.o.worldSize);
    const m = minRankSamples(this.splitInfo(this.manifest), this.o.worldSize, this.o.stride);
    return this.o.dropLast ? Math.floor(m / this.o.batchSize) : Math.ceil(m / this.o.batchSize);
  }

  /** Samples each rank yields per epoch. */
  samplesPerEpoch(): number {
    if (this.global) return this.batchesPerEpoch() * this.o.batchSize;
    const m = minRankSamples(this.splitInfo(this.manifest!), this.o.worldSize, this.o.stride);
    return this.o.dropLast ? this.batchesPerEpoch() * this.o.batchSize : m;
  }

  /**
   * Hands a batch's images array back for reuse by a later batch (its contents will be overwritten):
   * call it once nothing reads the batch any more, e.g. after copying it into a tensor. Optional; it
   * saves allocating and page-faulting ~19 MB per batch of 32 at 224 and the garbage collections that
   * external memory triggers (about 0.3 ms of the loader thread per image, docs/benchmarks.md).
   */
  recycle(batch: Batch): void {
    if (this.spare.length < this.o.prefetch + 2 && !this.spare.includes(batch.images)) this.spare.push(batch.images);
  }

  /** The running epoch's decode threads (null between epochs): for fault injection and stats. */
  get decodePool(): DecodePool | null {
    return this.pool;
  }

  private collectReaderStats(r: ShardReader): void {
    this.stats.bytesRead += r.bytesRead;
    for (const k of r.corruptShards) if (!this.stats.corruptShards.includes(k)) this.stats.corruptShards.push(k);
  }

  /** Rank order: by (rank, worldSize, position). Global order: by the sample's place in the epoch, the same at any world size. */
  private augmentSeed(epoch: number, p: number, slice: { rank: number; worldSize: number; batchSize: number }): number {
    const o = this.o;
    return this.global ? hashSeed(o.seed, epoch, globalIndexOf(p, slice), 0x91a06) : hashSeed(o.seed, epoch, o.rank, o.worldSize, p, 0xa06);
  }

  async *batches(epoch: number): AsyncGenerator<Batch> {
    const m = await this.init();
    const o = this.o;
    const split = this.splitInfo(m);
    const total = this.samplesPerEpoch();
    const nBatches = this.batchesPerEpoch();
    const slice = { rank: o.rank, worldSize: o.worldSize, batchSize: o.batchSize };
    const plan = this.global
      ? planGlobalRank(split, { seed: o.seed, epoch, shuffle: o.shuffle, shuffleBuffer: o.shuffleBuffer, ...slice })
      : planRank(split, { seed: o.seed, epoch, rank: o.rank, worldSize: o.worldSize, shuffle: o.shuffle, shuffleBuffer: o.shuffleBuffer, stride: o.stride });
    const resume = o.cursor && o.cursor.epoch === epoch ? o.cursor : null;
    const globalBatch = o.batchSize * o.worldSize;
    // Global order: the cursor counts the epoch's samples over all ranks, in whole global batches.
    let batchIndex = resume ? (this.global ? resume.position / globalBatch : resume.batches ?? Math.floor(resume.position / o.batchSize)) : 0;
    let position = resume ? (this.global ? batchIndex * o.batchSize : resume.position) : 0;
    let yielded = resume ? Math.min(total, batchIndex * o.batchSize) : 0;
    if (batchIndex >= nBatches) return;

    const offsets = shardOffsets(split);
    const L = plan.order.length;
    const window = Math.max(1, (o.prefetch + 1) * o.batchSize);
    // Item p decodes into frame p % window: at most `window` items are alive (queued or being copied).
    const pool = new DecodePool(o.decodeThreads, { pipeline: o.pipeline, inputSize: o.inputSize, mean: m.mean, std: m.std, pca: m.pca }, window);
    this.pool = pool;
    type Item = { position: number; key: string; label: number; result: Promise<Error | null> };
    const queue: Item[] = [];
    let reader: ShardReader | null = null;
    let readerPass = -1;
    let stopped = false;
    let pumpError: unknown = null;
    let pumpDone = false;
    let produced = position;
    let consecutiveBad = 0;
    let corruptThisCall = 0;
    // Positions needed if nothing more turns out corrupt; grows with every corrupt sample found.
    const baseLimit = position + (total - yielded);
    let wakePump: (() => void) | null = null;
    let wakeConsumer: (() => void) | null = null;
    const notifyPump = () => {
      const w = wakePump;
      wakePump = null;
      w?.();
    };
    const notifyConsumer = () => {
      const w = wakeConsumer;
      wakeConsumer = null;
      w?.();
    };

    const readerFor = (p: number): ShardReader => {
      const pass = Math.floor(p / L);
      if (pass !== readerPass) {
        if (reader) this.collectReaderStats(reader);
        reader?.close();
        const wanted = new Set(plan.order.slice(p - pass * L));
        reader = new ShardReader(o.store, o.bucket, split.shards, offsets, plan.shards, wanted);
        readerPass = pass;
      }
      return reader!;
    };

    // Producer: fetch samples in output order and start decoding up to `window` ahead.
    const pump = (async () => {
      try {
        while (!stopped) {
          // Global order: nothing replaces a corrupt sample (another rank's or batch's slot would be seen twice).
          if (queue.length >= window || produced >= baseLimit + (this.global ? 0 : corruptThisCall)) {
            await new Promise<void>((r) => (wakePump = r));
            continue;
          }
          const p = produced++;
          // Past the rank's own samples (p >= L) only when corrupt ones were skipped: wrap to its start.
          const sample = await readerFor(p).get(plan.order[p % L]);
          if (stopped) break;
          consecutiveBad = sample.image ? 0 : consecutiveBad + 1;
          if (consecutiveBad > L) throw new DataError('TAR_CORRUPT', `no readable sample in split '${o.split}' for rank ${o.rank}: re-ingest the dataset`);
          const result: Promise<Error | null> = sample.image
            ? pool.run(sample.image, this.augmentSeed(epoch, p, slice), p % window).then(() => null, (e: Error) => e)
            : Promise.resolve(new Error(sample.reason ?? 'missing'));
          queue.push({ position: p, key: sample.key, label: sample.label, result });
          notifyConsumer();
        }
      } catch (err) {
        pumpError = err;
      } finally {
        pumpDone = true;
        notifyConsumer();
      }
    })();

    const crops = cropsPerImage(o.pipeline);
    const size = crops * o.inputSize * o.inputSize * 3;
    try {
      while (batchIndex < nBatches) {
        const bs = Math.min(o.batchSize, total - yielded);
        const reuse = this.spare.findIndex((a) => a.length === bs * size);
        // Every element is overwritten below: bs frames of `size` floats.
        const images = reuse >= 0 ? this.spare.splice(reuse, 1)[0] : new Float32Array(bs * size);
        const labels = new Int32Array(bs);
        const keys: string[] = [];
        let n = 0;
        // Global order: this batch is exactly the slots up to batchEnd, the corrupt ones left out.
        const batchEnd = (batchIndex + 1) * o.batchSize;
        while (this.global ? position < batchEnd : n < bs) {
          while (queue.length === 0) {
            if (pumpError) throw pumpError;
            if (pumpDone) throw new Error('loader producer stopped early');
            await new Promise<void>((r) => (wakeConsumer = r));
          }
          // Leave the item queued until its frame is copied out, so the pump cannot reuse the frame.
          const item = queue[0];
          const r = await item.result;
          if (r === null) images.set(pool.frame(item.position % window), n * size);
          queue.shift();
          notifyPump();
          position = item.position + 1;
          if (r instanceof DecodeWorkerError) throw r;
          if (r instanceof Error) {
            corruptThisCall++;
            notifyPump();
            this.stats.corrupt++;
            if (this.stats.corruptKeys.length < MAX_CORRUPT_KEYS) this.stats.corruptKeys.push(item.key);
            continue;
          }
          labels[n] = item.label;
          keys.push(item.key);
          n++;
        }
        batchIndex++;
        yielded += bs;
        this.stats.samples += n;
        if (n === 0) throw new DataError('TAR_CORRUPT', `every sample of rank ${o.rank}'s slice of global batch ${batchIndex - 1} in split '${o.split}' is unreadable: re-ingest the dataset`);
        const cursor = this.global ? { epoch, position: batchIndex * globalBatch, batches: batchIndex } : { epoch, position, batches: batchIndex };
        yield { images: n === bs ? images : images.slice(0, n * size), labels: n === bs ? labels : labels.slice(0, n), crops, size: n, cursor, keys };
      }
    } finally {
      stopped = true;
      notifyPump();
      await pump;
      const r = reader as ShardReader | null;
      if (r) {
        this.collectReaderStats(r);
        r.close();
      }
      this.stats.decodeThreadRestarts += pool.restarts;
      this.stats.decodeThreadCpuSeconds += await pool.threadCpuSeconds();
      if (this.pool === pool) this.pool = null;
      await pool.close();
    }
  }
}
