import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { decodeAugment, randomResizedCrop, AugmentConfig } from './augment';
import { Rng } from '../rng';
import { antialiasedBilinear } from '../spec-helpers';

const MEAN = [0.4, 0.5, 0.6];
const STD = [0.2, 0.25, 0.3];

async function png(w: number, h: number, f: (x: number, y: number, c: number) => number): Promise<Buffer> {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = f(x, y, c);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer();
}

const unnorm = (v: number, c: number) => Math.round((v * STD[c] + MEAN[c]) * 255);

test("'small': the output is the input shifted by at most 4 px with zero padding, maybe mirrored", async () => {
  const s = 12;
  const f = (x: number, y: number, c: number) => (x * 17 + y * 5 + c * 50 + 1) % 250 + 3; // never 0
  const img = await png(s, s, f);
  const cfg: AugmentConfig = { pipeline: 'small', inputSize: s, mean: MEAN, std: STD };
  const seen = new Set<string>();
  for (let seed = 0; seed < 40; seed++) {
    const out = await decodeAugment(img, seed, cfg);
    const matches: string[] = [];
    for (let dy = -4; dy <= 4; dy++) for (let dx = -4; dx <= 4; dx++) for (const flip of [false, true]) {
      let ok = true;
      for (let y = 0; y < s && ok; y++) for (let x = 0; x < s && ok; x++) {
        const sx = (flip ? s - 1 - x : x) + dx, sy = y + dy;
        for (let c = 0; c < 3; c++) {
          const want = sx < 0 || sy < 0 || sx >= s || sy >= s ? 0 : f(sx, sy, c);
          if (unnorm(out[(y * s + x) * 3 + c], c) !== want) ok = false;
        }
      }
      if (ok) matches.push(`${dx},${dy},${flip}`);
    }
    assert.equal(matches.length, 1, `seed ${seed}: ${matches.join(' ')}`);
    seen.add(matches[0]);
  }
  assert.ok(seen.size > 20, `only ${seen.size} distinct shifts in 40 seeds`);
});

test("'eval': centre crop after resizing the shorter side to inputSize·256/224", async () => {
  // 8×10 image, inputSize 7: shorter side 8 = round(7·256/224) so no resampling; crop at ((8-7)>>1, (10-7)>>1)
  const f = (x: number, y: number, c: number) => (x * 29 + y * 13 + c * 70) % 256;
  const out = await decodeAugment(await png(8, 10, f), 123, { pipeline: 'eval', inputSize: 7, mean: MEAN, std: STD });
  for (let y = 0; y < 7; y++) for (let x = 0; x < 7; x++) for (let c = 0; c < 3; c++) {
    assert.ok(Math.abs(out[(y * 7 + x) * 3 + c] - (f(x, y + 1, c) / 255 - MEAN[c]) / STD[c]) < 1e-5);
  }
});

test('random-resized crop: inside the image, area 8–100 %, aspect 3/4–4/3, both extremes reached', () => {
  const rng = new Rng(9);
  let minA = 1, maxA = 0;
  for (let i = 0; i < 5000; i++) {
    const r = randomResizedCrop(500, 375, rng);
    assert.ok(r.left >= 0 && r.top >= 0 && r.left + r.width <= 500 && r.top + r.height <= 375, JSON.stringify(r));
    const a = (r.width * r.height) / (500 * 375);
    const ratio = r.width / r.height;
    minA = Math.min(minA, a);
    maxA = Math.max(maxA, a);
    assert.ok(a > 0.075 && a <= 1.0001, `area ${a}`);
    assert.ok(ratio > 0.74 && ratio < 1.35, `ratio ${ratio}`);
  }
  assert.ok(minA < 0.1 && maxA > 0.6, `${minA}..${maxA}`);
});

test("'alexnet' PCA lighting: one RGB offset per image along the eigenvectors, α ~ N(0, 0.1²)·√λ", async () => {
  // a flat grey image: crops and flips are invisible, only the lighting offset remains
  const img = await png(40, 30, () => 100);
  const pca = { eigval: [0.04, 0.01, 0.0025], eigvec: [[0.58, 0.58, 0.57], [-0.71, 0, 0.7], [0.41, -0.82, 0.41]] };
  const cfg: AugmentConfig = { pipeline: 'alexnet', inputSize: 16, mean: MEAN, std: STD, pca };
  const alphas: number[][] = [];
  for (let seed = 0; seed < 300; seed++) {
    const out = await decodeAugment(img, seed, cfg);
    const d = [0, 1, 2].map((c) => out[c] * STD[c] + MEAN[c] - 100 / 255);
    for (let i = 0; i < out.length; i++) assert.ok(Math.abs(out[i] - out[i % 3]) < 1e-6, 'offset differs across pixels');
    // project on the (nearly orthonormal) eigenvectors: a_i ≈ d · v_i
    alphas.push(pca.eigvec.map((v) => (d[0] * v[0] + d[1] * v[1] + d[2] * v[2]) / Math.hypot(...v) ** 2));
  }
  for (let i = 0; i < 3; i++) {
    const xs = alphas.map((a) => a[i]);
    const mean = xs.reduce((a, x) => a + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / xs.length);
    const want = 0.1 * Math.sqrt(pca.eigval[i]);
    assert.ok(Math.abs(sd / want - 1) < 0.2, `component ${i}: sd ${sd}, want ${want}`);
    assert.ok(Math.abs(mean) < 3 * want / Math.sqrt(xs.length) + 2e-3, `component ${i}: mean ${mean}`);
  }
});

test("'resnet': the crop torchvision's RandomResizedCrop + flip would give, resized bilinearly (antialiased)", async () => {
  const w = 60, h = 45, s = 24;
  const f = (x: number, y: number, c: number) => Math.round(128 + 90 * Math.sin(x * 0.11 + c) * Math.cos(y * 0.09 - c));
  const img = await png(w, h, f);
  const cfg: AugmentConfig = { pipeline: 'resnet', inputSize: s, mean: MEAN, std: STD };
  let flips = 0, up = 0, down = 0;
  for (let seed = 0; seed < 24; seed++) {
    const out = await decodeAugment(img, seed, cfg);
    // the parameters as the pipeline draws them: crop rectangle, then the flip
    const rng = new Rng(seed);
    const r = randomResizedCrop(w, h, rng);
    const flip = rng.next() < 0.5;
    flips += Number(flip);
    if (r.width < s || r.height < s) up++;
    else down++;
    const ref = antialiasedBilinear((x, y, c) => f(r.left + x, r.top + y, c), r.width, r.height, s, s);
    let sum = 0, max = 0;
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) for (let c = 0; c < 3; c++) {
      const got = (out[(y * s + x) * 3 + c] * STD[c] + MEAN[c]) * 255;
      const d = Math.abs(got - ref[(y * s + (flip ? s - 1 - x : x)) * 3 + c]);
      sum += d;
      max = Math.max(max, d);
    }
    // Reducing and enlarging alike (about a fifth of ImageNet crops at 224 are enlarged), the
    // float32 result is the reference up to rounding; a wrong rectangle, tap or flip is levels off.
    const mean = sum / (s * s * 3);
    assert.ok(mean < 1e-3 && max < 1e-2, `seed ${seed} ${JSON.stringify(r)} flip ${flip}: mean |diff| ${mean.toExponential(2)}, max ${max.toExponential(2)} levels`);
  }
  assert.ok(flips > 4 && flips < 20 && up > 0 && down > 0, `flips ${flips}, upsampled ${up}, downsampled ${down}`);
});
