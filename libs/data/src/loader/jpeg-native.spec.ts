import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeJpegRgb, jpegDecoder, Rect } from './jpeg-native';
import { AugmentConfig, decodeAugment, PIPELINES } from './augment';
import { Rng } from '../rng';

// The libjpeg-turbo addon is checked against sharp (libvips' own libjpeg), pixel for pixel. CI sets
// FLEET_REQUIRE_NATIVE_JPEG=1 so that an addon that failed to build fails here instead of skipping.
const required = process.env.FLEET_REQUIRE_NATIVE_JPEG === '1';
const decoder = jpegDecoder();
const skip = decoder.name === 'libjpeg-turbo' ? false : `the libjpeg-turbo addon is not built: ${decoder.reason}`;

test('the addon is built where it is required', { skip: !required && 'FLEET_REQUIRE_NATIVE_JPEG is not set' }, () => {
  assert.equal(decoder.name, 'libjpeg-turbo', decoder.reason);
});

/** A w × h photo-like image (smooth colour field plus noise), so chroma differs between neighbours. */
function pixels(w: number, h: number, seed: number): Buffer {
  const rng = new Rng(seed);
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const v = 128 + 70 * Math.sin(0.07 * x * (c + 1) + 0.05 * y) + rng.normal() * 25;
        px[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return px;
}

interface Variant {
  name: string;
  make(raw: sharp.Sharp): sharp.Sharp;
}
const VARIANTS: Variant[] = [
  { name: '4:2:0 baseline', make: (r) => r.jpeg({ quality: 90 }) },
  { name: '4:4:4', make: (r) => r.jpeg({ quality: 95, chromaSubsampling: '4:4:4' }) },
  { name: 'progressive', make: (r) => r.jpeg({ quality: 85, progressive: true }) },
  { name: 'mozjpeg scans and trellis', make: (r) => r.jpeg({ quality: 80, mozjpeg: true }) },
  { name: 'greyscale', make: (r) => r.greyscale().jpeg({ quality: 90 }) },
];

async function jpeg(w: number, h: number, seed: number, v: Variant): Promise<Buffer> {
  return v.make(sharp(pixels(w, h, seed), { raw: { width: w, height: h, channels: 3 } })).toBuffer();
}

async function viaSharp(img: Buffer, r: Rect): Promise<Buffer> {
  return sharp(img, { ignoreIcc: true }).extract(r).removeAlpha().toColourspace('srgb').raw().toBuffer();
}

/** Crops that put the edges everywhere that matters: image edges, iMCU boundaries (16 px), one pixel. */
function crops(w: number, h: number, rng: Rng): Rect[] {
  const fixed: Rect[] = [
    { left: 0, top: 0, width: w, height: h },
    { left: 0, top: 0, width: 1, height: 1 },
    { left: w - 1, top: h - 1, width: 1, height: 1 },
    { left: Math.min(16, w - 1), top: Math.min(16, h - 1), width: Math.max(1, Math.min(16, w - 16)), height: Math.max(1, Math.min(32, h - 16)) },
    { left: Math.min(15, w - 1), top: 0, width: Math.max(1, Math.min(17, w - 15)), height: h },
  ];
  const random = Array.from({ length: 12 }, () => {
    const width = 1 + rng.int(w);
    const height = 1 + rng.int(h);
    return { left: rng.int(w - width + 1), top: rng.int(h - height + 1), width, height };
  });
  return [...fixed, ...random];
}

test('crops decode to exactly the pixels sharp gives, for every sampling and odd sizes', { skip }, async () => {
  const rng = new Rng(7);
  const sizes: [number, number][] = [[500, 375], [37, 23], [17, 300], [1, 1], [640, 9]];
  let checked = 0;
  for (const v of VARIANTS) {
    for (const [w, h] of sizes) {
      const img = await jpeg(w, h, checked, v);
      for (const r of crops(w, h, rng)) {
        const got = decodeJpegRgb(img, { width: w, height: h }, r);
        assert.ok(got, `${v.name} ${w}x${h}: the addon declined it`);
        const want = await viaSharp(img, r);
        assert.equal(got.length, want.length);
        if (Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.length), want) !== 0) {
          let first = 0;
          while (got[first] === want[first]) first++;
          const px = Math.floor(first / 3);
          assert.fail(`${v.name} ${w}x${h}, crop ${JSON.stringify(r)}: pixel (${px % r.width}, ${Math.floor(px / r.width)}) is ${got[first]}, sharp gives ${want[first]}`);
        }
        checked++;
      }
    }
  }
  assert.equal(checked, VARIANTS.length * 5 * 17);
});

test('CMYK JPEGs and PNGs are left to sharp; decodeAugment still decodes them', { skip }, async () => {
  const w = 64;
  const h = 48;
  const cmyk = await sharp(pixels(w, h, 1), { raw: { width: w, height: h, channels: 3 } }).toColourspace('cmyk').jpeg().toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const png = await sharp(pixels(w, h, 2), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
  const all = { left: 0, top: 0, width: w, height: h };
  assert.equal(decodeJpegRgb(cmyk, { width: w, height: h }, all), null);
  assert.equal(decodeJpegRgb(png, { width: w, height: h }, all), null);
  const cfg: AugmentConfig = { pipeline: 'resnet', inputSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  for (const img of [cmyk, png]) {
    const out = await decodeAugment(img, 3, cfg);
    assert.equal(out.length, 32 * 32 * 3);
    assert.ok(out.every(Number.isFinite));
  }
});

test('a truncated or garbled JPEG throws a decoder error, and a crop outside the image is refused', { skip }, async () => {
  const w = 200;
  const h = 150;
  const img = await jpeg(w, h, 3, VARIANTS[0]);
  const all = { left: 0, top: 0, width: w, height: h };
  assert.throws(() => decodeJpegRgb(img.subarray(0, img.length >> 1), { width: w, height: h }, all), (e: Error & { code?: string }) => e.code === 'FLEET_JPEG_CORRUPT' && /premature end|corrupt/i.test(e.message));
  const garbled = Buffer.from(img);
  garbled.fill(0x5a, 2, 40); // the SOI survives; the headers after it do not
  assert.throws(() => decodeJpegRgb(garbled, { width: w, height: h }, all), (e: Error & { code?: string }) => e.code === 'FLEET_JPEG_CORRUPT');
  assert.throws(() => decodeJpegRgb(img, { width: w, height: h }, { left: 100, top: 0, width: 101, height: 10 }), /outside the 200x150 image/);
  // The thread's buffer is still sound after the failures.
  assert.deepEqual(Buffer.from(decodeJpegRgb(img, { width: w, height: h }, all)!), await viaSharp(img, all));
  // Through decodeAugment a failed decode goes to sharp, which rejects the image too: skipped and counted.
  const cfg: AugmentConfig = { pipeline: 'eval', inputSize: 32, mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] };
  await assert.rejects(decodeAugment(img.subarray(0, img.length >> 1), 0, cfg), /premature end|corrupt|truncated/i);
  await assert.rejects(decodeAugment(garbled, 0, cfg), /extraneous bytes|not defined/i);
});

test('every pipeline gives the same floats whichever decoder runs', { skip }, async () => {
  const img = await jpeg(300, 220, 9, VARIANTS[0]);
  const pca = { eigval: [0.2175, 0.0188, 0.0045], eigvec: [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.814], [-0.5836, -0.6948, 0.4203]] };
  const saved = process.env.FLEET_JPEG_DECODER;
  try {
    for (const pipeline of PIPELINES.filter((p) => p !== 'small')) {
      const cfg: AugmentConfig = { pipeline, inputSize: 64, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], pca };
      for (let seed = 0; seed < 4; seed++) {
        process.env.FLEET_JPEG_DECODER = 'native';
        const native = await decodeAugment(img, seed, cfg);
        process.env.FLEET_JPEG_DECODER = 'sharp';
        assert.equal(jpegDecoder().name, 'sharp');
        const viaLibvips = await decodeAugment(img, seed, cfg);
        assert.deepEqual(native, viaLibvips, `${pipeline}, seed ${seed}`);
      }
    }
  } finally {
    if (saved === undefined) delete process.env.FLEET_JPEG_DECODER;
    else process.env.FLEET_JPEG_DECODER = saved;
  }
});

test('mutated JPEGs (flipped bytes, truncations, stray markers, damaged headers) decode or throw, never crash', { skip }, async () => {
  // A crash here would take the whole process down with the decode thread. 60,000 mutations ran
  // clean when this was written; the spec keeps a fast share of them.
  const seeds = await Promise.all(VARIANTS.map((v, i) => jpeg(160, 120, 100 + i, v)));
  const rng = new Rng(31);
  const counts = { decoded: 0, declined: 0, corrupt: 0 };
  for (let k = 0; k < 3000; k++) {
    let buf = Buffer.from(seeds[k % seeds.length]);
    const kind = rng.int(4);
    if (kind === 0) for (let j = 0, m = 1 + rng.int(8); j < m; j++) buf[rng.int(buf.length)] = rng.int(256);
    else if (kind === 1) buf = buf.subarray(0, 2 + rng.int(buf.length - 2));
    else if (kind === 2) {
      const at = 2 + rng.int(buf.length - 2);
      buf = Buffer.concat([buf.subarray(0, at), Buffer.from([0xff, rng.int(256), rng.int(256)]), buf.subarray(at)]);
    } else for (let j = 0, m = 1 + rng.int(3); j < m; j++) buf[2 + rng.int(600)] = rng.int(256);
    const width = 1 + rng.int(160);
    const height = 1 + rng.int(120);
    const rect = { left: rng.int(160 - width + 1), top: rng.int(120 - height + 1), width, height };
    let got: Uint8Array | null;
    try {
      got = decodeJpegRgb(buf, { width: 160, height: 120 }, rect);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // A damaged header can also shrink the image under the crop.
      assert.ok(code === 'FLEET_JPEG_CORRUPT' || code === 'ERR_OUT_OF_RANGE', `unexpected ${code}: ${(e as Error).message}`);
      counts.corrupt++;
      continue;
    }
    // Declined (null): the SOI or the colour space was hit, so the image is no JPEG it decodes.
    if (got) assert.equal(got.length, width * height * 3);
    counts[got ? 'decoded' : 'declined']++;
  }
  assert.ok(counts.corrupt > 100 && counts.decoded > 100, JSON.stringify(counts));
});
