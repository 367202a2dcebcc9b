import { Readable } from 'node:stream';
import { ObjectStore, isNotFound } from '../store/object-store';
import type { RetryPolicy } from '../store/retry-policy';
import { ShardInfo } from '../manifest';
import { DataError } from '../errors';
import { parseTar, groupSamples, WdsSample } from '../tar/tar-parser';

/**
 * Starts downloading at once and buffers everything, so the next shard arrives while this one
 * is parsed. A connection that breaks mid-way is resumed from the last byte received.
 */
class EagerDownload {
  private chunks: Buffer[] = [];
  private done = false;
  private closed = false;
  private err: unknown = null;
  private wake: (() => void) | null = null;
  private stream: Readable | null = null;
  bytes = 0;

  constructor(private readonly open: (offset: number) => Promise<Readable>, private readonly size: number, private readonly retry: RetryPolicy, private readonly label: string) {
    this.run()
      .catch((e) => {
        this.err = e;
      })
      .finally(() => {
        this.done = true;
        this.notify();
      });
  }

  /** The store's retry policy covers a stream that breaks mid-way too: each try resumes from the last byte received. */
  private async run(): Promise<void> {
    await this.retry.run(`download ${this.label}`, async () => {
      if (this.closed) return;
      try {
        this.stream = await this.open(this.bytes);
        for await (const c of this.stream) {
          if (this.closed) return;
          this.chunks.push(c as Buffer);
          this.bytes += (c as Buffer).length;
          this.notify();
        }
      } catch (err) {
        // Closed by the reader, or broken after the last byte: nothing left to fetch.
        if (this.closed || this.bytes >= this.size) return;
        throw err;
      }
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *chunksIter(): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.chunks.length) {
        yield this.chunks.shift()!;
        continue;
      }
      if (this.err) throw this.err;
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  close(): void {
    this.closed = true;
    this.chunks = [];
    this.stream?.destroy();
  }
}

export interface RawSample {
  key: string;
  image: Buffer | null;
  label: number;
  reason?: string;
}

/**
 * Serves samples by slot id, reading the rank's shards in stream order, keeping only the
 * slots still wanted, and downloading the next shard that has any while this one is parsed.
 * A slot whose sample is missing (truncated tar) or malformed comes back as null.
 */
export class ShardReader {
  private readonly held = new Map<number, RawSample>();
  private readonly wantedShards: number[];
  private next = 0;
  private current: AsyncGenerator<WdsSample> | null = null;
  private currentShard = -1;
  private currentIndex = 0;
  private downloads = new Map<number, EagerDownload>();
  readonly corruptShards: string[] = [];
  bytesRead = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly bucket: string,
    private readonly shards: ShardInfo[],
    private readonly offsets: number[],
    streamOrder: number[],
    private readonly wanted: Set<number>,
  ) {
    this.wantedShards = streamOrder.filter((s) => {
      for (let i = 0; i < shards[s].samples; i++) if (wanted.has(offsets[s] + i)) return true;
      return false;
    });
  }

  async get(slot: number): Promise<RawSample> {
    for (;;) {
      const s = this.held.get(slot);
      if (s) {
        this.held.delete(slot);
        this.wanted.delete(slot);
        return s;
      }
      if (!this.wanted.has(slot) || !(await this.advance())) {
        this.wanted.delete(slot);
        return this.missing(slot, 'not found in any shard');
      }
    }
  }

  private missing(slot: number, reason: string): RawSample {
    let s = 0;
    while (s + 1 < this.offsets.length && this.offsets[s + 1] <= slot) s++;
    return { key: `${this.shards[s].key}#${slot - this.offsets[s]}`, image: null, label: -1, reason };
  }

  /** Reads one more sample (or finishes a shard); false when nothing is left to read. */
  private async advance(): Promise<boolean> {
    if (!this.current) {
      if (this.next >= this.wantedShards.length) return false;
      this.currentShard = this.wantedShards[this.next++];
      this.currentIndex = 0;
      const dl = this.download(this.currentShard);
      if (this.next < this.wantedShards.length) this.download(this.wantedShards[this.next]);
      const info = this.shards[this.currentShard];
      this.current = groupSamples(parseTar(dl.chunksIter(), info.key));
      return true;
    }
    const shard = this.currentShard;
    let r: IteratorResult<WdsSample>;
    try {
      r = await this.current.next();
    } catch (err) {
      // A truncated/garbled or vanished shard is bad data (skipped, counted); anything else,
      // e.g. the store unreachable after retries, fails the epoch.
      if ((!(err instanceof DataError) || err.code === 'S3_UNREACHABLE') && !isNotFound(err)) throw err;
      this.corruptShards.push(this.shards[shard].key);
      r = { done: true, value: undefined };
    }
    if (r.done) {
      this.finishShard(shard);
      return true;
    }
    const idx = this.currentIndex++;
    const slot = this.offsets[shard] + idx;
    if (idx < this.shards[shard].samples && this.wanted.has(slot)) this.held.set(slot, toRaw(r.value, this.shards[shard].key));
    return true;
  }

  private finishShard(shard: number): void {
    this.current = null;
    const dl = this.downloads.get(shard);
    if (dl) this.bytesRead += dl.bytes;
    dl?.close();
    this.downloads.delete(shard);
    // Slots of this shard that never came are missing: hand them out as null.
    for (let i = 0; i < this.shards[shard].samples; i++) {
      const slot = this.offsets[shard] + i;
      if (this.wanted.has(slot) && !this.held.has(slot)) this.held.set(slot, this.missing(slot, 'missing from a truncated or corrupt shard'));
    }
  }

  private download(shard: number): EagerDownload {
    let dl = this.downloads.get(shard);
    if (!dl) {
      const key = this.shards[shard].key;
      dl = new EagerDownload((offset) => this.store.getObject(this.bucket, key, offset), this.shards[shard].bytes, this.store.retry, `${this.bucket}/${key}`);
      this.downloads.set(shard, dl);
    }
    return dl;
  }

  close(): void {
    void this.current?.return(undefined).catch(() => undefined);
    for (const d of this.downloads.values()) d.close();
    this.downloads.clear();
    this.held.clear();
  }
}

const IMAGE_EXTS = ['jpg', 'jpeg', 'png', 'webp', 'ppm', 'pgm', 'tif', 'tiff'];

function toRaw(s: WdsSample, shardKey: string): RawSample {
  const key = `${shardKey}/${s.key}`;
  const ext = IMAGE_EXTS.find((e) => s.files.has(e));
  const cls = s.files.get('cls');
  if (!ext || !cls) return { key, image: null, label: -1, reason: 'sample lacks an image or a .cls entry' };
  const label = Number.parseInt(cls.toString('utf8').trim(), 10);
  if (!Number.isInteger(label) || label < 0) return { key, image: null, label: -1, reason: 'bad .cls' };
  return { key: s.key, image: s.files.get(ext)!, label };
}
