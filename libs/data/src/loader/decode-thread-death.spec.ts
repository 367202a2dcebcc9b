import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { testStore, collect } from '../spec-helpers';
import { ObjectStore } from '../store/object-store';
import { writeSyntheticDataset } from '../synthetic';
import { ShardLoader, ShardLoaderOptions, Batch } from './shard-loader';
import { DecodePool, DecodeWorkerError } from './decode-pool';
import { AugmentConfig, decodeAugment } from './augment';

// A decode thread that dies must not hang the loader: it is replaced and its samples decoded again
// (same batches, bit for bit), and threads that keep dying fail the epoch with a clear error.

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ store, bucket, cleanup } = await testStore('deadthread'));
  await writeSyntheticDataset(store, { bucket, prefix: 'd', numClasses: 3, imageSize: 48, trainPerClass: 16, valPerClass: 0, samplesPerShard: 8, seed: 5, format: 'jpg' });
});
after(() => cleanup());

const opts = (o: Partial<ShardLoaderOptions> = {}): ShardLoaderOptions => ({ store, bucket, prefix: 'd', split: 'train', rank: 0, worldSize: 1, seed: 9, batchSize: 4, pipeline: 'resnet', inputSize: 32, prefetch: 3, ...o });

function sameBatches(a: Batch[], b: Batch[]): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].keys, b[i].keys);
    assert.deepEqual(a[i].cursor, b[i].cursor);
    assert.ok(Buffer.from(a[i].images.buffer).equals(Buffer.from(b[i].images.buffer)), `batch ${i} images differ`);
  }
}

test('a decode thread killed mid-epoch is replaced: no sample lost, the same batches as an uninterrupted run', { timeout: 60_000 }, async () => {
  const reference = await collect(new ShardLoader(opts({ decodeThreads: 0 })).batches(1));
  const l = new ShardLoader(opts({ decodeThreads: 2 }));
  const got: Batch[] = [];
  let kills = 0;
  for await (const b of l.batches(1)) {
    got.push(b);
    // twice, on both threads, while the next batches are being decoded (prefetch 3)
    if (got.length === 1 || got.length === 3) {
      await l.decodePool!.killThread(kills % 2);
      kills++;
    }
  }
  sameBatches(got, reference);
  assert.equal(l.stats.decodeThreadRestarts, 2);
  assert.equal(l.stats.corrupt, 0);
});

test('threads that keep dying fail the epoch with DecodeWorkerError instead of hanging', { timeout: 60_000 }, async () => {
  const l = new ShardLoader(opts({ decodeThreads: 1, prefetch: 1 }));
  await assert.rejects(
    (async () => {
      for await (const b of l.batches(0)) {
        void b;
        const pool = l.decodePool!;
        for (let i = 0; i <= pool.maxRestarts; i++) await pool.killThread(0);
      }
    })(),
    (err: Error) => err instanceof DecodeWorkerError && /died \d+ times/.test(err.message) && /decodeThreads: 0/.test(err.message),
  );
});

test('a sample in flight on a thread that dies is decoded by its replacement; on two, it is rejected as undecodable', { timeout: 60_000 }, async () => {
  const jpg = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#3a7' } }).jpeg().toBuffer();
  const cfg: AugmentConfig = { pipeline: 'resnet', inputSize: 16, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  const pool = new DecodePool(1, cfg, 2);
  try {
    // A new thread takes tens of milliseconds to load sharp: the kills land before it has decoded anything.
    const survivor = pool.run(jpg, 3, 0);
    await pool.killThread(0);
    await survivor;
    assert.deepEqual(pool.frame(0), await decodeAugment(jpg, 3, cfg));
    assert.equal(pool.restarts, 1);
    const doomed = pool.run(jpg, 1, 0);
    await pool.killThread(0);
    await pool.killThread(0);
    await assert.rejects(doomed, /died twice/);
    assert.equal(pool.restarts, 3);
    await pool.run(jpg, 2, 1);
    assert.deepEqual(pool.frame(1), await decodeAugment(jpg, 2, cfg));
  } finally {
    await pool.close();
  }
});
