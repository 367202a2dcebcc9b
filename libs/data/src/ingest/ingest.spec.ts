import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import { testStore, collect } from '../spec-helpers';
import { ObjectStore } from '../store/object-store';
import { readManifest } from '../manifest';
import { ShardLoader } from '../loader/shard-loader';
import { ingestDataset, IngestProgress } from './ingest';

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
let dir: string;

before(async () => {
  ({ store, bucket, cleanup } = await testStore('ingest'));
  dir = mkdtempSync(join(tmpdir(), 'tf-ingest-'));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await cleanup();
});

/** Reads a whole split back in stored order, undoing the normalisation to 0..255. */
async function readBack(prefix: string, split: string, size: number) {
  const l = new ShardLoader({ store, bucket, prefix, split, rank: 0, worldSize: 1, seed: 0, batchSize: 5, pipeline: 'none', inputSize: size, shuffle: false, dropLast: false, decodeThreads: 0 });
  const m = await l.init();
  const out = new Map<string, { label: number; px: number[] }>();
  for (const b of await collect(l.batches(0))) {
    for (let i = 0; i < b.size; i++) {
      const px = Array.from(b.images.subarray(i * size * size * 3, (i + 1) * size * size * 3), (v, j) => Math.round((v * m.std[j % 3] + m.mean[j % 3]) * 255) + 0);
      assert.ok(!out.has(b.keys[i]), `duplicate ${b.keys[i]}`);
      out.set(b.keys[i], { label: b.labels[i], px });
    }
  }
  return out;
}

const SYNSETS = [
  ['n01440764', 'tench, Tinca tinca', [200, 40, 40]],
  ['n01443537', 'goldfish, Carassius auratus', [40, 200, 40]],
  ['n01484850', 'great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias', [40, 40, 200]],
  ['n01491361', 'tiger shark, Galeocerdo cuvieri', [200, 200, 40]],
] as const;

function colourJpeg(rgb: readonly number[], w = 40, h = 30): Promise<Buffer> {
  return sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).jpeg({ quality: 95 }).toBuffer();
}

test('ILSVRC-2012 layout with real synset ids: labels by wnid, val via LOC_val_solution.csv, bad JPEG skipped, restart reuses shards', async () => {
  const root = join(dir, 'imagenet');
  const expected = new Map<string, number>();
  // the synset list is deliberately not sorted: class ids follow sorted wnids
  mkdirSync(join(root, 'val'), { recursive: true });
  writeFileSync(join(root, 'LOC_synset_mapping.txt'), [SYNSETS[2], SYNSETS[0], SYNSETS[3], SYNSETS[1]].map(([w, n]) => `${w} ${n}`).join('\n') + '\n');
  const csv = ['ImageId,PredictionString'];
  let v = 0;
  for (let c = 0; c < 3; c++) {
    const [wnid, , rgb] = SYNSETS[c];
    mkdirSync(join(root, 'train', wnid), { recursive: true });
    for (let i = 0; i < 4; i++) {
      const name = `${wnid}_${1000 + i}`;
      writeFileSync(join(root, 'train', wnid, `${name}.JPEG`), await colourJpeg(rgb, 40 + i, 30));
      expected.set(name, c);
    }
    for (let i = 0; i < 2; i++) {
      const id = `ILSVRC2012_val_${String(++v).padStart(8, '0')}`;
      writeFileSync(join(root, 'val', `${id}.JPEG`), await colourJpeg(rgb));
      csv.push(`${id},${wnid} 1 2 30 20 ${wnid} 3 4 10 10`);
      expected.set(id, c);
    }
  }
  // a grayscale JPEG (ImageNet has some) and a truncated one
  const grey = await sharp({ create: { width: 30, height: 30, channels: 3, background: { r: 128, g: 128, b: 128 } } }).greyscale().jpeg().toBuffer();
  writeFileSync(join(root, 'train', 'n01440764', 'n01440764_grey.JPEG'), grey);
  expected.set('n01440764_grey', 0);
  const whole = await colourJpeg([10, 20, 30], 300, 200);
  writeFileSync(join(root, 'train', 'n01443537', 'n01443537_broken.JPEG'), whole.subarray(0, whole.length >> 1));
  writeFileSync(join(root, 'LOC_val_solution.csv'), csv.join('\n') + '\n');

  const progress: IngestProgress[] = [];
  const skippedFiles: string[] = [];
  const opts = { format: 'imagenet' as const, path: root, store, bucket, prefix: 'imagenet', samplesPerShard: 3, concurrency: 3, onProgress: (p: IngestProgress) => progress.push(p), onSkip: (f: string) => skippedFiles.push(f) };
  const r = await ingestDataset(opts);
  assert.equal(r.ingest.images, 13 + 6);
  assert.deepEqual(r.ingest.skipped.map((s) => s.file), [join(root, 'train', 'n01443537', 'n01443537_broken.JPEG')]);
  assert.deepEqual(skippedFiles, [join(root, 'train', 'n01443537', 'n01443537_broken.JPEG')]);
  assert.equal(progress.at(-1)!.images, 19);
  assert.equal(progress.at(-1)!.skipped, 1);
  const m = await readManifest(store, bucket, 'imagenet');
  assert.deepEqual(m.classes.map((c) => [c.id, c.wnid, c.name]), [0, 1, 2, 3].map((i) => [i, SYNSETS[i][0], SYNSETS[i][1]]));
  assert.equal(m.splits.train.samples, 13);
  assert.equal(m.splits.train.shards.length, 5);
  assert.equal(m.splits.val.samples, 6);
  assert.equal(m.imageSize, undefined);
  assert.ok(m.pca && m.pca.eigval[0] >= m.pca.eigval[1] && m.pca.eigval[1] >= m.pca.eigval[2]);

  for (const split of ['train', 'val']) {
    const got = await readBack('imagenet', split, 8);
    assert.equal(got.size, split === 'train' ? 13 : 6);
    for (const [key, { label, px }] of got) {
      assert.equal(label, expected.get(key), key);
      const rgb = key.endsWith('grey') ? [128, 128, 128] : SYNSETS[label][2];
      for (let j = 0; j < px.length; j++) assert.ok(Math.abs(px[j] - rgb[j % 3]) <= 12, `${key}: ${px[j]} vs ${rgb[j % 3]}`);
    }
  }

  // rerun: same shards, nothing uploaded again, same manifest
  const again = await ingestDataset({ ...opts, onProgress: undefined, onSkip: undefined });
  assert.equal(again.ingest.shardsReused, m.splits.train.shards.length + m.splits.val.shards.length);
  assert.deepEqual(await readManifest(store, bucket, 'imagenet'), m);
});

test('CIFAR-10 binary batches: channel planes become RGB pixels, exact through PNG', async () => {
  const root = join(dir, 'cifar-10-batches-bin');
  mkdirSync(root, { recursive: true });
  const pix = (rec: number, c: number, p: number) => (rec * 31 + c * 80 + p * 7) % 256;
  const batch = (n: number, base: number) => {
    const b = Buffer.alloc(n * 3073);
    for (let i = 0; i < n; i++) {
      b[i * 3073] = (base + i) % 10;
      for (let c = 0; c < 3; c++) for (let p = 0; p < 1024; p++) b[i * 3073 + 1 + c * 1024 + p] = pix(base + i, c, p);
    }
    return b;
  };
  writeFileSync(join(root, 'data_batch_1.bin'), batch(7, 0));
  writeFileSync(join(root, 'test_batch.bin'), batch(3, 100));
  writeFileSync(join(root, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n');
  const r = await ingestDataset({ format: 'cifar10', path: dir, store, bucket, prefix: 'cifar', samplesPerShard: 4 });
  assert.equal(r.ingest.images, 10);
  assert.equal(r.classes[9].name, 'truck');
  assert.deepEqual(r.imageSize, [32, 32]);
  const train = await readBack('cifar', 'train', 32);
  assert.equal(train.size, 7);
  for (const [key, { label, px }] of train) {
    const rec = Number(key.split('_')[1]);
    assert.equal(label, rec % 10);
    for (let p = 0; p < 1024; p += 13) for (let c = 0; c < 3; c++) assert.equal(px[p * 3 + c], pix(rec, c, p), `${key} p${p}c${c}`);
  }
  assert.equal((await readBack('cifar', 'val', 32)).size, 3);
});

test('IDX (MNIST layout, gzipped): grey images and labels exact', async () => {
  const root = join(dir, 'mnist');
  mkdirSync(root, { recursive: true });
  const n = 9, h = 6, w = 6;
  const idx = (dims: number[], data: number[]) => {
    const head = Buffer.alloc(4 + 4 * dims.length);
    head[2] = 0x08;
    head[3] = dims.length;
    dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
    return Buffer.concat([head, Buffer.from(data)]);
  };
  const px = (i: number, p: number) => (i * 40 + p * 11) % 256;
  writeFileSync(join(root, 'train-images-idx3-ubyte.gz'), gzipSync(idx([n, h, w], Array.from({ length: n * h * w }, (_, k) => px(Math.floor(k / (h * w)), k % (h * w))))));
  writeFileSync(join(root, 'train-labels-idx1-ubyte.gz'), gzipSync(idx([n], Array.from({ length: n }, (_, i) => (i * 3) % 10))));
  const r = await ingestDataset({ format: 'idx', path: root, store, bucket, prefix: 'mnist' });
  assert.equal(r.ingest.images, n);
  const got = await readBack('mnist', 'train', 6);
  assert.equal(got.size, n);
  for (const [key, { label, px: p }] of got) {
    const i = Number(key.split('_')[1]);
    assert.equal(label, (i * 3) % 10);
    for (let q = 0; q < h * w; q++) for (let c = 0; c < 3; c++) assert.equal(p[q * 3 + c], px(i, q));
  }
  // grey data: all channels share mean/std
  assert.ok(Math.abs(r.mean[0] - r.mean[2]) < 1e-12);
});

test('class/*.jpg tree', async () => {
  const root = join(dir, 'flowers');
  for (const [c, rgb] of [['daisy', [250, 250, 250]], ['rose', [200, 0, 30]]] as const) {
    mkdirSync(join(root, c), { recursive: true });
    for (let i = 0; i < 3; i++) writeFileSync(join(root, c, `img.${i}.jpg`), await colourJpeg(rgb, 16, 16));
  }
  const r = await ingestDataset({ format: 'folder', path: root, store, bucket, prefix: 'flowers' });
  assert.deepEqual(r.classes.map((c) => c.name), ['daisy', 'rose']);
  const got = await readBack('flowers', 'train', 4);
  assert.equal(got.size, 6);
  for (const [key, { label }] of got) assert.equal(label, key.startsWith('daisy') ? 0 : 1);
});
