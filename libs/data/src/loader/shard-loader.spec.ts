import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { testStore, collect } from '../spec-helpers';
import { ObjectStore } from '../store/object-store';
import { DatasetManifest, readManifest, writeManifest } from '../manifest';
import { writeSyntheticDataset, syntheticImage, encodeRaw } from '../synthetic';
import { ShardWriter } from '../shards/shard-writer';
import { ShardLoader, ShardLoaderOptions, Batch } from './shard-loader';
import { Rng, hashSeed } from '../rng';

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
let manifest: DatasetManifest;
const SIZE = 12;
const PREFIX = 'synth';

before(async () => {
  ({ store, bucket, cleanup } = await testStore('loader'));
  // 48 train samples in 12 shards of 4; 8 val samples in 2 shards (6 + 2)
  manifest = await writeSyntheticDataset(store, { bucket, prefix: PREFIX, numClasses: 4, imageSize: SIZE, trainPerClass: 12, valPerClass: 2, samplesPerShard: 4, seed: 11 });
});
after(() => cleanup());

function loader(o: Partial<ShardLoaderOptions>): ShardLoader {
  return new ShardLoader({ store, bucket, prefix: PREFIX, split: 'train', rank: 0, worldSize: 1, seed: 1, batchSize: 4, pipeline: 'none', inputSize: SIZE, decodeThreads: 0, shuffleBuffer: 6, ...o });
}

test('manifest: splits, shard counts and data mean/std', async () => {
  const m = await readManifest(store, bucket, PREFIX);
  assert.deepEqual(m, manifest);
  assert.equal(m.splits.train.samples, 48);
  assert.equal(m.splits.train.shards.length, 12);
  assert.equal(m.splits.val.samples, 8);
  for (const s of m.splits.train.shards) assert.equal((await store.stat(bucket, s.key))!.size, s.bytes);
  for (let k = 0; k < 3; k++) assert.ok(m.mean[k] > 0.1 && m.mean[k] < 0.9 && m.std[k] > 0.05);
});

test('every sample comes back once with its label and its exact pixels', async () => {
  const l = loader({ split: 'train', dropLast: false, shuffle: false });
  const batches = await collect(l.batches(0));
  const keys = batches.flatMap((b) => b.keys);
  assert.equal(keys.length, 48);
  assert.equal(new Set(keys).size, 48);
  const counts = [0, 0, 0, 0];
  for (const b of batches) {
    for (let i = 0; i < b.size; i++) {
      const label = b.labels[i];
      counts[label]++;
      // Independent reference: regenerate the image from its key and the label the loader gave it.
      const idx = Number(b.keys[i].split('_')[1]);
      const px = syntheticImage(label, 4, SIZE, SIZE, new Rng(hashSeed(11, 1, idx + 1)));
      const got = b.images.subarray(i * SIZE * SIZE * 3, (i + 1) * SIZE * SIZE * 3);
      for (let j = 0; j < px.length; j += 37) {
        const want = (px[j] / 255 - manifest.mean[j % 3]) / manifest.std[j % 3];
        assert.ok(Math.abs(got[j] - want) < 1e-5, `${b.keys[i]} px ${j}: ${got[j]} vs ${want}`);
      }
    }
  }
  assert.deepEqual(counts, [12, 12, 12, 12]);
});

test('ranks 1..4 are disjoint and complete; equal batch counts', async () => {
  for (let n = 1; n <= 4; n++) {
    const all: string[] = [];
    const counts: number[] = [];
    for (let r = 0; r < n; r++) {
      const l = loader({ rank: r, worldSize: n, batchSize: 4, dropLast: true });
      await l.init();
      const bs = await collect(l.batches(2));
      assert.equal(bs.length, l.batchesPerEpoch());
      counts.push(bs.length);
      all.push(...bs.flatMap((b) => b.keys));
    }
    assert.equal(new Set(all).size, all.length, `overlap with ${n} ranks`);
    assert.equal(all.length, 48, `union with ${n} ranks`);
    assert.ok(counts.every((c) => c === counts[0]));
  }
  // val: 2 shards for 4 ranks → sample striding
  const val: string[] = [];
  for (let r = 0; r < 4; r++) val.push(...(await collect(loader({ split: 'val', rank: r, worldSize: 4, batchSize: 2 }).batches(0))).flatMap((b) => b.keys));
  assert.equal(new Set(val).size, 8);
  // val defaults to sample striding: 2 ranks over shards of 6 + 2 still see all 8; 3 ranks see 3 × 2, disjoint
  for (const [n, want] of [[2, 8], [3, 6]]) {
    const keys: string[] = [];
    for (let r = 0; r < n; r++) keys.push(...(await collect(loader({ split: 'val', rank: r, worldSize: n, batchSize: 3 }).batches(0))).flatMap((b) => b.keys));
    assert.equal(keys.length, want);
    assert.equal(new Set(keys).size, want);
  }
});

function sameBatches(a: Batch[], b: Batch[]): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].keys, b[i].keys);
    assert.deepEqual(a[i].labels, b[i].labels);
    assert.deepEqual(a[i].cursor, b[i].cursor);
    assert.ok(Buffer.from(a[i].images.buffer).equals(Buffer.from(b[i].images.buffer)), `batch ${i} images differ`);
  }
}

test('same seed: bit-identical batches, in-thread or in a worker pool; new epoch: new order', async () => {
  for (const pipeline of ['small', 'resnet', 'alexnet', 'eval'] as const) {
    const a = await collect(loader({ pipeline, worldSize: 2, rank: 1, decodeThreads: 0 }).batches(3));
    const b = await collect(loader({ pipeline, worldSize: 2, rank: 1, decodeThreads: 2, prefetch: 1 }).batches(3));
    sameBatches(a, b);
    for (const x of a) for (const v of x.images) assert.ok(Number.isFinite(v));
  }
  const e3 = (await collect(loader({ pipeline: 'resnet' }).batches(3))).flatMap((b) => b.keys);
  const e4 = (await collect(loader({ pipeline: 'resnet' }).batches(4))).flatMap((b) => b.keys);
  assert.notDeepEqual(e3, e4);
  assert.deepEqual([...e3].sort(), [...e4].sort());
});

test('resuming from a cursor yields exactly the rest of the uninterrupted epoch', async () => {
  const full = await collect(loader({ pipeline: 'resnet', worldSize: 2, rank: 0, batchSize: 3 }).batches(5));
  for (const k of [0, 2, full.length - 1]) {
    const cursor = { epoch: 5, position: full[k].cursor.position };
    const rest = await collect(loader({ pipeline: 'resnet', worldSize: 2, rank: 0, batchSize: 3, cursor, decodeThreads: 1 }).batches(5));
    sameBatches(rest, full.slice(k + 1));
  }
});

test('a truncated shard and an undecodable image are skipped and counted, every rank still yields its batches', async () => {
  const prefix = 'corrupt';
  const w = new ShardWriter(store, { bucket, prefix, split: 'train', maxSamples: 5 });
  const img = await encodeRaw(syntheticImage(1, 2, 8, 8, new Rng(1)), 8, 8, 3, 'png');
  for (let i = 0; i < 20; i++) {
    const bad = i === 7;
    await w.add({ key: `s${i}`, image: bad ? Buffer.from('definitely not a png') : img, ext: 'png', label: i % 2 });
  }
  const shards = await w.close();
  // cut shard 2 in the middle of its third sample
  const full = await store.getBuffer(bucket, shards[2].key);
  await store.putObject(bucket, shards[2].key, full.subarray(0, Math.floor(full.length * 0.5)));
  const m: DatasetManifest = { version: 1, name: 'corrupt', splits: { train: { shards, samples: 20 } }, classes: [{ id: 0, name: 'a' }, { id: 1, name: 'b' }], mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  await writeManifest(store, bucket, prefix, m);
  assert.ok((await sharp(img).metadata()).width === 8);
  for (const decodeThreads of [0, 1]) {
    const l = loader({ prefix, inputSize: 8, batchSize: 4, decodeThreads });
    await l.init();
    const bs = await collect(l.batches(0));
    assert.equal(bs.length, l.batchesPerEpoch());
    assert.equal(bs.length, 5);
    // s7 undecodable + samples 12..14 lost in the cut (the 11th is partly there at most)
    assert.ok(l.stats.corrupt >= 4 && l.stats.corrupt <= 5, `corrupt ${l.stats.corrupt}`);
    assert.ok(l.stats.corruptKeys.includes('s7'), l.stats.corruptKeys.join());
    assert.deepEqual(l.stats.corruptShards, [shards[2].key]);
    const keys = bs.flatMap((b) => b.keys);
    assert.ok(!keys.includes('s7'));
    for (const b of bs) assert.equal(b.size, 4);
  }
});

test('recycled images arrays are reused and fully overwritten: the same batches as fresh ones', async () => {
  const fresh = await collect(loader({ pipeline: 'resnet', batchSize: 5 }).batches(6));
  const l = loader({ pipeline: 'resnet', batchSize: 5, decodeThreads: 1, prefetch: 1 });
  const seen = new Set<Float32Array>();
  let reused = 0;
  let i = 0;
  for await (const b of l.batches(6)) {
    if (seen.has(b.images)) reused++;
    seen.add(b.images);
    assert.ok(Buffer.from(b.images.buffer).equals(Buffer.from(fresh[i].images.buffer)), `batch ${i} differs`);
    assert.deepEqual(b.keys, fresh[i].keys);
    // scribble over it before handing it back: the next batch that gets it must overwrite every value
    b.images.fill(Number.NaN);
    l.recycle(b);
    i++;
  }
  assert.equal(i, fresh.length);
  assert.ok(reused >= fresh.length - 2, `only ${reused} of ${fresh.length} batches reused an array`);
});

test("order 'global': 2 ranks for 2 steps, then 3 ranks from the cursor, then 1: every sample of the epoch once, the same pixels", async () => {
  // 48 samples, global batch 12 (6 × 2, 4 × 3, 12 × 1): 4 steps an epoch.
  const G = 12;
  const ranks = (n: number, cursor?: { epoch: number; position: number }) =>
    Array.from({ length: n }, (_, r) => loader({ order: 'global', rank: r, worldSize: n, batchSize: G / n, pipeline: 'alexnet', shuffleBuffer: 10, cursor }));
  const run = async (n: number, steps: number, cursor?: { epoch: number; position: number }) => {
    const its = ranks(n, cursor).map((l) => l.batches(1));
    const out: Batch[][] = [];
    for (let s = 0; s < steps; s++) out.push(await Promise.all(its.map(async (it) => (await it.next()).value as Batch)));
    await Promise.all(its.map((it) => it.return(undefined)));
    return out;
  };
  const whole = await run(1, 4);
  const first = await run(2, 2);
  assert.deepEqual(first[1].map((b) => b.cursor.position), [24, 24], 'the cursor counts global samples');
  const second = await run(3, 1, first[1][0].cursor);
  const third = await run(1, 1, second[0][0].cursor);
  const elastic = [...first, ...second, ...third];
  const keysOf = (steps: Batch[][]) => steps.map((step) => step.flatMap((b) => b.keys));
  assert.deepEqual(keysOf(elastic), keysOf(whole), 'each step is the same global batch in the same order');
  assert.equal(new Set(keysOf(elastic).flat()).size, 48);
  // Augmentation follows the sample's place in the global order, not the rank that reads it.
  const pixels = (steps: Batch[][]) => steps.map((step) => Buffer.concat(step.map((b) => Buffer.from(b.images.buffer, b.images.byteOffset, b.images.byteLength))));
  assert.ok(pixels(elastic).every((p, i) => p.equals(pixels(whole)[i])), 'the same augmented pixels at any world size');
  assert.throws(() => loader({ order: 'global', worldSize: 2, batchSize: 6, cursor: { epoch: 1, position: 5 } }), /multiple of the global batch 12/);
  assert.throws(() => loader({ order: 'global', dropLast: false }), /dropLast/);
});
