import { ObjectStore, sha1 } from '../store/object-store';
import { ShardInfo, trimSlash } from '../manifest';
import { TarWriter, entrySize, TAR_END_SIZE } from '../tar/tar-writer';
import { badOption } from '../errors';

export interface Sample {
  /** Unique within the dataset, no dots (WebDataset key). */
  key: string;
  image: Uint8Array;
  /** 'jpg' | 'png' | ... */
  ext: string;
  label: number;
}

export interface ShardWriterOptions {
  bucket: string;
  /** Dataset prefix; shards go to `${prefix}/${split}-NNNNNN.tar`. */
  prefix: string;
  split: string;
  /** Roll to a new shard once it would exceed this many bytes. Default 256 MB. */
  targetBytes?: number;
  /** Also roll after this many samples. Default unlimited. */
  maxSamples?: number;
  /** Uploads in flight at once. Default 3. */
  concurrency?: number;
  /** Skip an upload when an object with the same size and content hash is there already (restartable ingestion). Default true. */
  skipExisting?: boolean;
  /** Called after each shard is uploaded or skipped. */
  onShard?: (shard: ShardInfo, skipped: boolean) => void;
}

const DEFAULTS = { targetBytes: 256 * 1024 * 1024, maxSamples: Infinity, concurrency: 3, skipExisting: true };

/** Writes samples into tar shards of about targetBytes and uploads them, several at once. */
export class ShardWriter {
  private readonly o: Required<Omit<ShardWriterOptions, 'onShard'>> & Pick<ShardWriterOptions, 'onShard'>;
  private tar = new TarWriter();
  private count = 0;
  private index = 0;
  private readonly shards: ShardInfo[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private error: unknown = null;
  skipped = 0;
  uploadedBytes = 0;

  constructor(private readonly store: ObjectStore, opts: ShardWriterOptions) {
    this.o = { ...DEFAULTS, ...opts };
    if (!(this.o.targetBytes > 0)) throw badOption('targetBytes', this.o.targetBytes, 'a positive number of bytes');
    if (!(this.o.maxSamples > 0)) throw badOption('maxSamples', this.o.maxSamples, 'a positive integer');
    if (!(this.o.concurrency >= 1)) throw badOption('concurrency', this.o.concurrency, 'at least 1');
    if (!/^[\w-]+$/.test(this.o.split)) throw badOption('split', this.o.split, 'a name of letters, digits, - and _');
  }

  async add(s: Sample): Promise<void> {
    if (this.error) throw this.error;
    if (s.key.includes('.')) throw badOption('sample key', s.key, 'a key without dots (WebDataset uses the first dot to split key and extension)');
    const cls = Buffer.from(String(s.label));
    const size = entrySize(s.image.length) + entrySize(cls.length);
    if (this.count > 0 && (this.tar.size + size + TAR_END_SIZE > this.o.targetBytes || this.count >= this.o.maxSamples)) await this.roll();
    this.tar.add(`${s.key}.${s.ext}`, s.image);
    this.tar.add(`${s.key}.cls`, cls);
    this.count++;
  }

  /** Uploads the last shard, waits for every upload; returns the shards in order. */
  async close(): Promise<ShardInfo[]> {
    if (this.count > 0) await this.roll();
    await Promise.all(this.inflight);
    if (this.error) throw this.error;
    return this.shards.slice();
  }

  private async roll(): Promise<void> {
    const body = this.tar.finish();
    const info: ShardInfo = { key: `${trimSlash(this.o.prefix)}/${this.o.split}-${String(this.index++).padStart(6, '0')}.tar`, samples: this.count, bytes: body.length };
    this.count = 0;
    this.shards.push(info);
    while (this.inflight.size >= this.o.concurrency) await Promise.race(this.inflight);
    const p: Promise<void> = this.upload(info, body)
      .catch((err) => {
        this.error ??= err;
      })
      .finally(() => this.inflight.delete(p));
    this.inflight.add(p);
  }

  private async upload(info: ShardInfo, body: Buffer): Promise<void> {
    const hash = sha1(body);
    if (this.o.skipExisting) {
      const st = await this.store.stat(this.o.bucket, info.key);
      if (st && st.size === body.length && st.meta['tf-sha1'] === hash) {
        this.skipped++;
        this.o.onShard?.(info, true);
        return;
      }
    }
    await this.store.putObject(this.o.bucket, info.key, body, { 'Content-Type': 'application/x-tar', 'x-amz-meta-tf-sha1': hash });
    this.uploadedBytes += body.length;
    this.o.onShard?.(info, false);
  }
}
