import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { testStore, collect, antialiasedBilinear } from '../spec-helpers';
import { ObjectStore } from '../store/object-store';
import { writeManifest } from '../manifest';
import { ShardWriter } from '../shards/shard-writer';
import { ShardLoader } from './shard-loader';

// AlexNet's ten-crop evaluation through the whole loader (tar shards on S3, a decode thread,
// batching), checked against crops cut independently: by hand from the source pixels where no
// resampling happens, and from the float64 reference resampler's output otherwise.

const S = 16; // inputSize; the shorter side is resized to round(16 * 256 / 224) = 18
const SHORT = 18;
const MEAN: [number, number, number] = [0.45, 0.5, 0.55];
const STD: [number, number, number] = [0.2, 0.25, 0.3];
const f = (x: number, y: number, c: number) => (x * 37 + y * 11 + c * 85 + ((x * y) % 7)) % 256;

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
const images: { key: string; bytes: Buffer; w: number; h: number; exact: boolean }[] = [];

async function encode(w: number, h: number, format: 'png' | 'jpeg'): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = f(x, y, c);
  const img = sharp(px, { raw: { width: w, height: h, channels: 3 } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

before(async () => {
  ({ store, bucket, cleanup } = await testStore('tencrop'));
  // 24×18 and 18×21: shorter side already 18, so the crops are the source pixels; the others are resampled.
  const specs: [number, number, 'png' | 'jpeg'][] = [[24, 18, 'png'], [18, 21, 'png'], [30, 40, 'png'], [50, 37, 'jpeg'], [19, 18, 'png']];
  const w = new ShardWriter(store, { bucket, prefix: 'tc', split: 'val', maxSamples: 3 });
  for (const [i, [iw, ih, fmt]] of specs.entries()) {
    const bytes = await encode(iw, ih, fmt);
    images.push({ key: `img${i}`, bytes, w: iw, h: ih, exact: Math.min(iw, ih) === SHORT && fmt === 'png' });
    await w.add({ key: `img${i}`, image: bytes, ext: fmt === 'png' ? 'png' : 'jpg', label: i });
  }
  const shards = await w.close();
  await writeManifest(store, bucket, 'tc', { version: 1, name: 'tc', splits: { val: { shards, samples: specs.length } }, classes: specs.map((_, i) => ({ id: i, name: `c${i}` })), mean: MEAN, std: STD });
});
after(() => cleanup());

/** torchvision TenCrop order: tl, tr, bl, br, centre of the image, then the same five of its mirror image. */
function origins(w: number, h: number): [number, number][] {
  return [[0, 0], [w - S, 0], [0, h - S], [w - S, h - S], [(w - S) >> 1, (h - S) >> 1]];
}

/**
 * The ten crops in 0–255 units, cut by hand from the reference resampling (shorter side to SHORT,
 * torchvision's antialiased bilinear) of the decoded image.
 */
async function referenceCrops(bytes: Buffer): Promise<Float64Array[]> {
  const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
  const [w, h] = info.width <= info.height ? [SHORT, Math.round((info.height * SHORT) / info.width)] : [Math.round((info.width * SHORT) / info.height), SHORT];
  const ref = antialiasedBilinear((x, y, c) => data[(y * info.width + x) * 3 + c], info.width, info.height, w, h);
  const out: Float64Array[] = [];
  for (const mirror of [false, true]) {
    for (const [x0, y0] of origins(w, h)) {
      const crop = new Float64Array(S * S * 3);
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) {
        const sx = mirror ? w - 1 - (x0 + x) : x0 + x;
        crop[(y * S + x) * 3 + c] = ref[((y0 + y) * w + sx) * 3 + c];
      }
      out.push(crop);
    }
  }
  return out;
}

/** The ten crops as raw RGB bytes, by hand from f (only for images needing no resampling). */
function handCrops(w: number, h: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const mirror of [false, true]) {
    for (const [x0, y0] of origins(w, h)) {
      const b = Buffer.alloc(S * S * 3);
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) for (let c = 0; c < 3; c++) {
        // pixel (x, y) of a crop at x0 of the mirror image is pixel w-1-(x0+x) of the image
        const sx = mirror ? w - 1 - (x0 + x) : x0 + x;
        b[(y * S + x) * 3 + c] = f(sx, y0 + y, c);
      }
      out.push(b);
    }
  }
  return out;
}

test("'tencrop': 10 crops per image through the loader = the four corners, the centre and their mirror images", async () => {
  const l = new ShardLoader({ store, bucket, prefix: 'tc', split: 'val', rank: 0, worldSize: 1, seed: 3, batchSize: 2, pipeline: 'tencrop', inputSize: S, decodeThreads: 1 });
  const batches = await collect(l.batches(0));
  assert.deepEqual(batches.map((b) => b.size), [2, 2, 1]);
  const frame = S * S * 3;
  let checked = 0;
  for (const b of batches) {
    assert.equal(b.crops, 10);
    assert.equal(b.images.length, b.size * 10 * frame);
    for (let i = 0; i < b.size; i++) {
      const img = images.find((m) => m.key === b.keys[i])!;
      assert.equal(b.labels[i], Number(img.key.slice(3)));
      const refs = [await referenceCrops(img.bytes), ...(img.exact ? [handCrops(img.w, img.h)] : [])];
      for (const ref of refs) {
        for (let k = 0; k < 10; k++) {
          const got = b.images.subarray((i * 10 + k) * frame, (i * 10 + k + 1) * frame);
          for (let j = 0; j < frame; j++) {
            const want = (ref[k][j] / 255 - MEAN[j % 3]) / STD[j % 3];
            if (Math.abs(got[j] - want) > 1e-4) assert.fail(`${img.key} crop ${k} value ${j}: ${got[j]} vs ${want}`);
          }
        }
        checked++;
      }
    }
  }
  assert.equal(checked, 5 + 3, 'every image against the reference, the three unresampled ones also by hand');
  // the ten crops of one image are not all the same (corners, centre and mirrors differ)
  const first = batches[0].images;
  const distinct = new Set(Array.from({ length: 10 }, (_, k) => Buffer.from(first.buffer, k * frame * 4, frame * 4).toString('base64')));
  assert.equal(distinct.size, 10);
});
