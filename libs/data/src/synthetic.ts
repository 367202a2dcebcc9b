import sharp from 'sharp';
import { ObjectStore } from './store/object-store';
import { DatasetManifest, SplitInfo, writeManifest, trimSlash } from './manifest';
import { ShardWriter } from './shards/shard-writer';
import { PixelStats } from './stats/pixel-stats';
import { Rng, hashSeed } from './rng';
import { badOption } from './errors';

export interface SyntheticDatasetOptions {
  bucket: string;
  prefix: string;
  numClasses: number;
  /** Square side in pixels, or [h, w]. */
  imageSize: number | [number, number];
  trainPerClass: number;
  valPerClass: number;
  samplesPerShard: number;
  seed: number;
  /** Default 'png' (lossless, so tests can compare pixels exactly). */
  format?: 'png' | 'jpg';
  /**
   * Tint each class with its own colour. Default true: a short run (tens of steps) already
   * learns it; false tints at random, so only stripe orientation and frequency tell classes apart.
   */
  colourCue?: boolean;
  name?: string;
}

/**
 * Class c is a sinusoidal stripe pattern with its own orientation and frequency plus a colour
 * tint; every image gets a random phase (a shift), random contrast, brightness and Gaussian noise,
 * so a small CNN has to learn orientation/frequency, not just read one pixel.
 */
export function syntheticImage(cls: number, numClasses: number, h: number, w: number, rng: Rng, colourCue = true): Uint8Array {
  const angle = (Math.PI * cls) / numClasses + rng.uniform(-0.08, 0.08);
  const freq = (2 + (cls % 3) * 1.5) * (2 * Math.PI) / Math.max(h, w) * rng.uniform(0.9, 1.1);
  const phase = rng.uniform(0, 2 * Math.PI);
  const randomHue = rng.next();
  const hue = colourCue ? (cls * 0.618034) % 1 : randomHue;
  const tint = [0, 1, 2].map((k) => 0.5 + 0.35 * Math.cos(2 * Math.PI * (hue + k / 3)) + rng.uniform(-0.1, 0.1));
  const contrast = rng.uniform(0.5, 1);
  const bright = rng.uniform(-0.15, 0.15);
  const ca = Math.cos(angle), sa = Math.sin(angle);
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = 0.5 + 0.5 * contrast * Math.sin(freq * (x * ca + y * sa) + phase);
      for (let k = 0; k < 3; k++) {
        const p = (0.35 + 0.65 * tint[k]) * v + bright + 0.1 * rng.normal();
        out[(y * w + x) * 3 + k] = Math.max(0, Math.min(255, Math.round(p * 255)));
      }
    }
  }
  return out;
}

export async function encodeRaw(px: Uint8Array, h: number, w: number, channels: 1 | 3, format: 'png' | 'jpg'): Promise<Buffer> {
  const img = sharp(Buffer.from(px.buffer, px.byteOffset, px.byteLength), { raw: { width: w, height: h, channels } });
  return format === 'png' ? img.png({ compressionLevel: 6 }).toBuffer() : img.jpeg({ quality: 90 }).toBuffer();
}

/** Generates, shards and uploads a learnable image-classification dataset; writes the manifest last. */
export async function writeSyntheticDataset(store: ObjectStore, opts: SyntheticDatasetOptions): Promise<DatasetManifest> {
  const { numClasses, trainPerClass, valPerClass, samplesPerShard, seed } = opts;
  if (!(numClasses >= 2)) throw badOption('numClasses', numClasses, 'at least 2');
  if (!(samplesPerShard >= 1)) throw badOption('samplesPerShard', samplesPerShard, 'at least 1');
  const [h, w] = typeof opts.imageSize === 'number' ? [opts.imageSize, opts.imageSize] : opts.imageSize;
  const format = opts.format ?? 'png';
  await store.ensureBucket(opts.bucket);
  const stats = new PixelStats();
  const splits: Record<string, SplitInfo> = {};
  for (const [split, perClass, salt] of [['train', trainPerClass, 1], ['val', valPerClass, 2]] as const) {
    if (perClass <= 0) continue;
    const labels: number[] = [];
    for (let c = 0; c < numClasses; c++) for (let i = 0; i < perClass; i++) labels.push(c);
    new Rng(hashSeed(seed, salt, 0)).shuffle(labels);
    const writer = new ShardWriter(store, { bucket: opts.bucket, prefix: opts.prefix, split, maxSamples: samplesPerShard, skipExisting: false });
    // Encode a group at a time (sharp runs them in parallel), add in order.
    for (let g = 0; g < labels.length; g += 32) {
      const idx = Array.from({ length: Math.min(32, labels.length - g) }, (_, k) => g + k);
      const pixels = idx.map((i) => syntheticImage(labels[i], numClasses, h, w, new Rng(hashSeed(seed, salt, i + 1)), opts.colourCue ?? true));
      const encoded = await Promise.all(pixels.map((px) => encodeRaw(px, h, w, 3, format)));
      for (let k = 0; k < idx.length; k++) {
        if (split === 'train') stats.add(pixels[k], 3);
        await writer.add({ key: `${split}_${String(idx[k]).padStart(8, '0')}`, image: encoded[k], ext: format, label: labels[idx[k]] });
      }
    }
    const shards = await writer.close();
    splits[split] = { shards, samples: labels.length };
  }
  const manifest: DatasetManifest = {
    version: 1,
    name: opts.name ?? `synthetic-${trimSlash(opts.prefix)}`,
    splits,
    classes: Array.from({ length: numClasses }, (_, id) => ({ id, name: `pattern-${id}` })),
    imageSize: [h, w],
    mean: stats.mean(),
    std: stats.std(),
    pca: stats.pca(),
  };
  await writeManifest(store, opts.bucket, opts.prefix, manifest);
  return manifest;
}
