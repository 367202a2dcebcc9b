import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { testStore, collect } from '../spec-helpers';
import { ObjectStore } from '../store/object-store';
import { writeSyntheticDataset } from '../synthetic';
import { ShardLoader, Batch } from './shard-loader';

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ store, bucket, cleanup } = await testStore('xproc'));
  await writeSyntheticDataset(store, { bucket, prefix: 'd', numClasses: 3, imageSize: 20, trainPerClass: 10, valPerClass: 0, samplesPerShard: 7, seed: 4, format: 'jpg' });
});
after(() => cleanup());

function digest(batches: Batch[]): string {
  const h = createHash('sha256');
  for (const b of batches) {
    h.update(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
    h.update(Buffer.from(b.labels.buffer, b.labels.byteOffset, b.labels.byteLength));
    h.update(JSON.stringify(b.cursor));
  }
  return h.digest('hex');
}

const OPTS = { prefix: 'd', split: 'train', rank: 1, worldSize: 2, seed: 77, batchSize: 4, pipeline: 'resnet' as const, inputSize: 16 };

test('another process regenerates bit-identical batches for the same (seed, epoch, rank, worldSize)', async () => {
  const here = digest(await collect(new ShardLoader({ store, bucket, ...OPTS, decodeThreads: 1 }).batches(2)));
  const script = `
    const { ObjectStore, ShardLoader } = require(${JSON.stringify(join(__dirname, '..', 'index.js'))});
    const { createHash } = require('node:crypto');
    (async () => {
      const l = new ShardLoader({ store: new ObjectStore(JSON.parse(process.env.S3)), bucket: process.env.BUCKET, ...JSON.parse(process.env.OPTS), decodeThreads: 0 });
      const h = createHash('sha256');
      for await (const b of l.batches(2)) {
        h.update(Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength));
        h.update(Buffer.from(b.labels.buffer, b.labels.byteOffset, b.labels.byteLength));
        h.update(JSON.stringify(b.cursor));
      }
      process.stdout.write(h.digest('hex'));
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const there = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['-e', script], { env: { ...process.env, S3: JSON.stringify(store.cfg), BUCKET: bucket, OPTS: JSON.stringify(OPTS) } }, (err, out, errOut) =>
      err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
    ),
  );
  assert.equal(there, here);
  const other = digest(await collect(new ShardLoader({ store, bucket, ...OPTS, rank: 0, decodeThreads: 0 }).batches(2)));
  assert.notEqual(other, here);
});

test('a process that abandons a batches() iterator mid-epoch still exits; one awaiting a batch does not exit early', async () => {
  const script = `
    const { ObjectStore, ShardLoader } = require(${JSON.stringify(join(__dirname, '..', 'index.js'))});
    (async () => {
      const l = new ShardLoader({ store: new ObjectStore(JSON.parse(process.env.S3)), bucket: process.env.BUCKET, ...JSON.parse(process.env.OPTS), decodeThreads: 2 });
      const it = l.batches(0)[Symbol.asyncIterator]();
      let n = 0;
      for (let i = 0; i < 2; i++) n += (await it.next()).value.size;
      process.stdout.write('took ' + n);
    })().catch((e) => { console.error(e); process.exit(1); });`;
  const t0 = Date.now();
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['-e', script], { timeout: 30_000, env: { ...process.env, S3: JSON.stringify(store.cfg), BUCKET: bucket, OPTS: JSON.stringify(OPTS) } }, (err, o, errOut) =>
      err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(o),
    ),
  );
  assert.equal(out, 'took 8');
  assert.ok(Date.now() - t0 < 30_000);
});
