import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { Readable } from 'node:stream';
import * as Minio from 'minio';
import { DataError } from '../errors';
import { RetryPolicy } from './retry-policy';

// infra owns the S3 configuration type; a type-only import, so data loads no other lib at run time.
import type { S3Config } from '@tensorfleet/infra';
export type { S3Config };

export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
}

/** Objects at least this large go up in parts (minio does the multipart upload). */
const PART_SIZE = 16 * 1024 * 1024;

/** A thin layer over minio's Client with the handful of calls datasets and checkpoints need. */
export class ObjectStore {
  readonly client: Minio.Client;
  /** Every call below goes through it: shard loaders, dataset writers and checkpoints alike. */
  readonly retry: RetryPolicy;

  constructor(readonly cfg: S3Config, opts: { retry?: RetryPolicy } = {}) {
    if (!cfg || !cfg.endPoint || !cfg.port) throw new DataError('BAD_OPTIONS', 'ObjectStore needs an S3Config with endPoint and port (see @tensorfleet/infra resolveServices())');
    this.client = new Minio.Client({
      endPoint: cfg.endPoint,
      port: cfg.port,
      useSSL: cfg.useSSL,
      accessKey: cfg.accessKey,
      secretKey: cfg.secretKey,
      region: cfg.region,
      pathStyle: true,
      partSize: PART_SIZE,
      // One retry policy (this.retry) decides; minio's own would retry 5xx a second time, unlogged here.
      retryOptions: { disableRetry: true },
      ...(cfg.useSSL && cfg.caFile ? { transportAgent: new Agent({ ca: readCa(cfg.caFile), keepAlive: true }) } : {}),
    });
    const endpoint = `S3 at ${cfg.useSSL ? 'https' : 'http'}://${cfg.endPoint}:${cfg.port}`;
    this.retry = opts.retry ? opts.retry.forEndpoint(endpoint) : RetryPolicy.fromEnv({ endpoint });
  }

  async ensureBucket(bucket: string): Promise<void> {
    if (await this.retry.run(`bucketExists ${bucket}`, () => this.client.bucketExists(bucket))) return;
    try {
      await this.retry.run(`makeBucket ${bucket}`, () => this.client.makeBucket(bucket, this.cfg.region));
    } catch (err) {
      // Another process may have created it in between (or our first try did before its answer was lost).
      if (!(await this.retry.run(`bucketExists ${bucket}`, () => this.client.bucketExists(bucket)))) throw err;
    }
  }

  /**
   * Buffers go up in one request below PART_SIZE, in parts above, retried whole; streams
   * always stream and are not retried (what was read of them is gone).
   */
  async putObject(bucket: string, key: string, body: Buffer | Uint8Array | Readable, meta: Record<string, string> = {}): Promise<void> {
    if (body instanceof Readable) {
      await this.client.putObject(bucket, key, body, undefined, meta);
      return;
    }
    const buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    // minio sends any Buffer in one request; a sized stream of small chunks goes up in parts
    // (its part splitter passes one big chunk through whole).
    await this.retry.run(`put ${bucket}/${key}`, () => this.client.putObject(bucket, key, buf.length > PART_SIZE ? Readable.from(chunksOf(buf, 1 << 20)) : buf, buf.length, meta));
  }

  /** The object from byte `offset` on (to resume a broken download). Only opening it is retried: a reader resumes a broken stream itself. */
  async getObject(bucket: string, key: string, offset = 0): Promise<Readable> {
    return this.retry.run(`get ${bucket}/${key}${offset > 0 ? ` from byte ${offset}` : ''}`, () =>
      offset > 0 ? this.client.getPartialObject(bucket, key, offset) : this.client.getObject(bucket, key));
  }

  async getBuffer(bucket: string, key: string): Promise<Buffer> {
    return this.retry.run(`get ${bucket}/${key}`, async () => {
      const chunks: Buffer[] = [];
      for await (const c of await this.client.getObject(bucket, key)) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    });
  }

  /** Size, etag and user metadata (lower-case keys without the x-amz-meta- prefix), or null. */
  async stat(bucket: string, key: string): Promise<{ size: number; etag: string; meta: Record<string, string> } | null> {
    try {
      const s = await this.retry.run(`stat ${bucket}/${key}`, () => this.client.statObject(bucket, key));
      const meta: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.metaData ?? {})) meta[k.toLowerCase().replace(/^x-amz-meta-/, '')] = String(v);
      return { size: s.size, etag: s.etag, meta };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async exists(bucket: string, key: string): Promise<boolean> {
    return (await this.stat(bucket, key)) !== null;
  }

  async list(bucket: string, prefix: string): Promise<ObjectInfo[]> {
    const out = await this.retry.run(`list ${bucket}/${prefix}`, async () => {
      const found: ObjectInfo[] = [];
      const stream = this.client.listObjectsV2(bucket, prefix, true);
      for await (const o of stream as AsyncIterable<{ name?: string; size: number; etag?: string }>) {
        if (o.name) found.push({ key: o.name, size: o.size, etag: o.etag ?? '' });
      }
      return found;
    });
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async remove(bucket: string, key: string): Promise<void> {
    await this.retry.run(`remove ${bucket}/${key}`, () => this.client.removeObject(bucket, key));
  }

  /** Removes every object under prefix, then the bucket if prefix is ''. For test cleanup. */
  async removeAll(bucket: string, prefix = ''): Promise<void> {
    if (!(await this.retry.run(`bucketExists ${bucket}`, () => this.client.bucketExists(bucket)))) return;
    const keys = (await this.list(bucket, prefix)).map((o) => o.key);
    for (let i = 0; i < keys.length; i += 500) await this.retry.run(`remove ${keys.length} objects in ${bucket}`, () => this.client.removeObjects(bucket, keys.slice(i, i + 500)));
    if (prefix === '') await this.retry.run(`removeBucket ${bucket}`, () => this.client.removeBucket(bucket));
  }
}

function* chunksOf(buf: Buffer, n: number): Generator<Buffer> {
  for (let o = 0; o < buf.length; o += n) yield buf.subarray(o, o + n);
}

export function isNotFound(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === 'NotFound' || code === 'NoSuchKey' || code === 'NoSuchBucket';
}

export function sha1(buf: Uint8Array): string {
  return createHash('sha1').update(buf).digest('hex');
}

/** The CA bundle of S3Config.caFile (S3_CA_FILE); unreadable is an error naming it. */
function readCa(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new DataError('BAD_OPTIONS', `S3_CA_FILE='${path}' cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the path of the PEM file of the CA that signed the S3 server's certificate`);
  }
}
