import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResizeJob, resizeJs, resizeNormalise, SIMD_MAX_SOURCE_BYTES } from './resize';
import { resizeKernel } from './simd/resize-kernel';
import { antialiasedBilinear } from '../spec-helpers';
import { Rng } from '../rng';

interface Case {
  w: number;
  h: number;
  c: number;
  ow: number;
  oh: number;
  x0: number;
  y0: number;
  /** The window: sw × sh. */
  sw: number;
  sh: number;
  flip: boolean;
}

function randomCase(rng: Rng, c: number): Case {
  const w = 1 + rng.int(90);
  const h = 1 + rng.int(90);
  // Shrinks by up to ~6×, enlarges by up to ~8×, and the identity.
  const ow = rng.next() < 0.1 ? w : 1 + rng.int(60);
  const oh = rng.next() < 0.1 ? h : 1 + rng.int(60);
  // Square windows, as the crops are, and rectangles (the whole resized image, for the ten crops).
  const sw = 1 + rng.int(ow);
  const sh = rng.next() < 0.5 ? Math.min(sw, oh) : 1 + rng.int(oh);
  return { w, h, c, ow, oh, x0: rng.int(ow - sw + 1), y0: rng.int(oh - sh + 1), sw, sh, flip: rng.next() < 0.5 };
}

/** Runs `resize` on a case with a sentinel before and after the output, and checks it against the reference. */
function check(k: Case, seed: number, resize: (job: ResizeJob) => Float32Array): void {
  const rng = new Rng(seed);
  const src = new Uint8Array(k.w * k.h * k.c);
  for (let i = 0; i < src.length; i++) src[i] = rng.int(256);
  const scale = [1 / (255 * 0.2), 1 / (255 * 0.25), 1 / (255 * 0.3)];
  const bias = [-0.4 / 0.2, -0.5 / 0.25, -0.6 / 0.3];
  const n = k.sw * k.sh * 3;
  const buf = new Float32Array(n + 8).fill(12345);
  const out = buf.subarray(4, 4 + n);
  resize({ src, width: k.w, height: k.h, channels: k.c, outWidth: k.ow, outHeight: k.oh, x0: k.x0, y0: k.y0, windowWidth: k.sw, windowHeight: k.sh, flip: k.flip, scale, bias, out });
  // Grey and grey+alpha read the grey value in all three channels; RGBA drops the alpha.
  const channel = (c: number) => (k.c < 3 ? 0 : c);
  const ref = antialiasedBilinear((x, y, c) => src[(y * k.w + x) * k.c + channel(c)], k.w, k.h, k.ow, k.oh);
  for (let y = 0; y < k.sh; y++) for (let x = 0; x < k.sw; x++) for (let c = 0; c < 3; c++) {
    const sx = k.x0 + (k.flip ? k.sw - 1 - x : x);
    const want = ref[((k.y0 + y) * k.ow + sx) * 3 + c] * scale[c] + bias[c];
    const got = out[(y * k.sw + x) * 3 + c];
    if (!(Math.abs(got - want) < 1e-5 * Math.max(1, Math.abs(want)))) {
      assert.fail(`${JSON.stringify(k)} pixel (${x}, ${y}) channel ${c}: ${got} vs ${want}`);
    }
  }
  for (const i of [0, 1, 2, 3, n + 4, n + 5, n + 6, n + 7]) assert.equal(buf[i], 12345, `${JSON.stringify(k)}: wrote outside its output`);
}

test('the SIMD kernel assembles and instantiates here', () => {
  assert.ok(resizeKernel(), 'WebAssembly SIMD is missing: Node 16.4 or later has it');
});

test('SIMD resampling = the float64 reference: square and oblong windows, mirrors, shrinking, enlarging, odd widths', () => {
  const rng = new Rng(7);
  for (let i = 0; i < 300; i++) check(randomCase(rng, 3), i, resizeNormalise);
});

test('the JavaScript resampler = the reference, for grey, grey+alpha, RGB and RGBA sources', () => {
  const rng = new Rng(8);
  for (let i = 0; i < 200; i++) check(randomCase(rng, [1, 2, 3, 4][i % 4]), i, resizeJs);
});

test('ImageNet-sized crops, and a large image that grows the kernel memory', () => {
  const rng = new Rng(9);
  for (const [w, h] of [[433, 325], [500, 375], [150, 120], [1200, 900]]) {
    check({ w, h, c: 3, ow: 224, oh: 224, x0: 0, y0: 0, sw: 224, sh: 224, flip: rng.next() < 0.5 }, w, resizeNormalise);
  }
  // eval: shorter side to 256, centre 224
  check({ w: 500, h: 375, c: 3, ow: 341, oh: 256, x0: 58, y0: 16, sw: 224, sh: 224, flip: false }, 1, resizeNormalise);
});

test('a source over SIMD_MAX_SOURCE_BYTES is resized in JavaScript and leaves the kernel memory as it was', () => {
  const side = Math.ceil(Math.sqrt(SIMD_MAX_SOURCE_BYTES / 3)) + 1;
  const src = new Uint8Array(side * side * 3);
  for (let i = 0; i < src.length; i += 4099) src[i] = i % 251;
  const job = (out: Float32Array): ResizeJob => ({ src, width: side, height: side, channels: 3, outWidth: 8, outHeight: 8, x0: 0, y0: 0, windowWidth: 8, windowHeight: 8, flip: false, scale: [1, 1, 1], bias: [0, 0, 0], out });
  const before = resizeKernel()!.heapBytes();
  const got = resizeNormalise(job(new Float32Array(8 * 8 * 3)));
  assert.equal(resizeKernel()!.heapBytes(), before);
  assert.ok(before < SIMD_MAX_SOURCE_BYTES, `kernel memory ${before} bytes`);
  assert.deepEqual(got, resizeJs(job(new Float32Array(8 * 8 * 3))));
});
