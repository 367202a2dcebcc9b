/**
 * Bilinear resampling as torchvision's `Resize`/`RandomResizedCrop` do it (antialias=True, PIL's
 * BILINEAR): a separable triangle filter whose support widens by the reduction factor, pixel centres
 * at +0.5, weights normalised per output pixel. Done here rather than in libvips because one fused
 * pass (crop → resize → mirror → normalise into float32) costs a fraction of libvips' resize plus our
 * normalise loop, and because enlarging then matches torchvision too (libvips places samples
 * differently when it enlarges).
 */

import { resizeKernel } from './simd/resize-kernel';

/** Source taps of one axis: output o reads `taps[o]` pixels from `lo[o]` with weights `w[o * maxTaps + k]`. */
export interface AxisFilter {
  lo: Int32Array;
  taps: Int32Array;
  maxTaps: number;
  w: Float32Array;
}

/**
 * Filter for resampling `inSize` source pixels to `outSize`, for outputs `from` … `from + count - 1`
 * (a window of the resized axis, for crops taken after the resize).
 */
export function axisFilter(inSize: number, outSize: number, from = 0, count = outSize): AxisFilter {
  const scale = inSize / outSize;
  const support = Math.max(scale, 1);
  const maxTaps = Math.ceil(support) * 2 + 1;
  const lo = new Int32Array(count);
  const taps = new Int32Array(count);
  const w = new Float32Array(count * maxTaps);
  for (let i = 0; i < count; i++) {
    const centre = (from + i + 0.5) * scale;
    const a = Math.max(Math.floor(centre - support + 0.5), 0);
    const b = Math.min(Math.floor(centre + support + 0.5), inSize);
    let sum = 0;
    for (let k = 0; k < b - a; k++) sum += Math.max(0, 1 - Math.abs((a + k - centre + 0.5) / support));
    for (let k = 0; k < b - a; k++) w[i * maxTaps + k] = Math.max(0, 1 - Math.abs((a + k - centre + 0.5) / support)) / sum;
    lo[i] = a;
    taps[i] = b - a;
  }
  return { lo, taps, maxTaps, w };
}

export interface ResizeJob {
  /** Interleaved pixels, `channels` (1 or 3, or 2/4 with alpha ignored) per pixel, `width` per row. */
  src: Uint8Array;
  width: number;
  height: number;
  channels: number;
  /** Size the whole source is resampled to. */
  outWidth: number;
  outHeight: number;
  /** The window of the resampled image to produce: windowWidth × windowHeight from (x0, y0). */
  x0: number;
  y0: number;
  windowWidth: number;
  windowHeight: number;
  /** Mirror the window left to right. */
  flip: boolean;
  /** out = value·scale[c] + bias[c], value in 0–255 units. */
  scale: ArrayLike<number>;
  bias: ArrayLike<number>;
  out: Float32Array;
}

/**
 * Sources above this many bytes take the JavaScript path: a WebAssembly memory never shrinks, so
 * one huge photo would otherwise pin its size in every decode thread for good.
 */
export const SIMD_MAX_SOURCE_BYTES = 48 << 20;

/**
 * Resamples, mirrors and normalises `job.src` into `job.out` (windowHeight × windowWidth × 3, HWC): with the SIMD
 * kernel for RGB sources, else (other channel counts, sources over SIMD_MAX_SOURCE_BYTES, no
 * WebAssembly SIMD) in JavaScript.
 */
export function resizeNormalise(job: ResizeJob): Float32Array {
  const kernel = job.channels === 3 && job.src.length <= SIMD_MAX_SOURCE_BYTES ? resizeKernel() : null;
  return kernel ? resizeSimd(job, kernel) : resizeJs(job);
}

const align16 = (n: number) => (n + 15) & ~15;

function resizeSimd(job: ResizeJob, kernel: NonNullable<ReturnType<typeof resizeKernel>>): Float32Array {
  const { src, width, windowWidth: ww, windowHeight: wh } = job;
  const fx = axisFilter(width, job.outWidth, job.x0, ww);
  const fy = axisFilter(job.height, job.outHeight, job.y0, wh);
  // Only the source columns the horizontal filter reads go through the vertical pass.
  const c0 = fx.lo[0];
  const c1 = fx.lo[ww - 1] + fx.taps[ww - 1];
  const rowBytes = (c1 - c0) * 3;
  const midStride = align16(rowBytes) * 4;
  // Byte offsets of every buffer; 16 bytes of slack after those a 16-byte access may run past.
  let at = 0;
  const take = (bytes: number) => {
    const p = at;
    at = align16(at + bytes);
    return p;
  };
  const yLo = take(wh * 4), yTaps = take(wh * 4), yW = take(wh * fy.maxTaps * 4);
  const xLo = take(ww * 4), xTaps = take(ww * 4), xW = take(ww * fx.maxTaps * 4);
  const srcAt = take(src.length + 16);
  // One row between the passes: it stays in L1, where a whole intermediate image would not.
  const mid = take(midStride + 16);
  const outAt = take(ww * wh * 12 + 16);
  const heap = kernel.heap(at);
  new Int32Array(heap, yLo, wh).set(fy.lo);
  new Int32Array(heap, yTaps, wh).set(fy.taps);
  new Float32Array(heap, yW, fy.w.length).set(fy.w);
  const lo = new Int32Array(heap, xLo, ww);
  for (let i = 0; i < ww; i++) lo[i] = fx.lo[i] - c0;
  new Int32Array(heap, xTaps, ww).set(fx.taps);
  new Float32Array(heap, xW, fx.w.length).set(fx.w);
  new Uint8Array(heap, srcAt, src.length).set(src);
  const k = kernel.exports;
  const [sc, b] = [job.scale, job.bias];
  for (let y = 0; y < wh; y++) {
    k.resize_vertical(srcAt + c0 * 3, width * 3, rowBytes, yLo + 4 * y, yTaps + 4 * y, yW + 4 * y * fy.maxTaps, fy.maxTaps, 1, mid, midStride);
    k.resize_horizontal(mid, midStride, xLo, xTaps, xW, fx.maxTaps, ww, 1, job.flip ? 1 : 0, sc[0], sc[1], sc[2], b[0], b[1], b[2], outAt + y * ww * 12);
  }
  job.out.set(new Float32Array(heap, outAt, ww * wh * 3));
  return job.out;
}

// Reused between calls: one decode thread resizes one image at a time.
let rows = new Float32Array(0);

/** The same resampling in plain JavaScript: the horizontal pass first, from any channel count. */
export function resizeJs(job: ResizeJob): Float32Array {
  const { src, width, channels: c, windowWidth: ww, windowHeight: wh, out } = job;
  const fx = axisFilter(width, job.outWidth, job.x0, ww);
  const fy = axisFilter(job.height, job.outHeight, job.y0, wh);
  // Horizontal pass over only the source rows the vertical pass reads.
  const r0 = fy.lo[0];
  const r1 = fy.lo[wh - 1] + fy.taps[wh - 1];
  const stride = ww * 3;
  if (rows.length < (r1 - r0) * stride) rows = new Float32Array((r1 - r0) * stride);
  const g1 = c < 3 ? 0 : 1;
  const g2 = c < 3 ? 0 : 2;
  for (let y = r0; y < r1; y++) {
    const srcRow = y * width * c;
    const dstRow = (y - r0) * stride;
    for (let x = 0; x < ww; x++) {
      const n = fx.taps[x];
      const wo = x * fx.maxTaps;
      let p = srcRow + fx.lo[x] * c;
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      for (let k = 0; k < n; k++, p += c) {
        const wk = fx.w[wo + k];
        a0 += wk * src[p];
        a1 += wk * src[p + g1];
        a2 += wk * src[p + g2];
      }
      const d = dstRow + (job.flip ? ww - 1 - x : x) * 3;
      rows[d] = a0;
      rows[d + 1] = a1;
      rows[d + 2] = a2;
    }
  }
  const [sc0, sc1, sc2] = [job.scale[0], job.scale[1], job.scale[2]];
  const [b0, b1, b2] = [job.bias[0], job.bias[1], job.bias[2]];
  for (let y = 0; y < wh; y++) {
    const n = fy.taps[y];
    const wo = y * fy.maxTaps;
    const base = (fy.lo[y] - r0) * stride;
    const o = y * stride;
    for (let i = 0; i < stride; i += 3) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      for (let k = 0, p = base + i; k < n; k++, p += stride) {
        const wk = fy.w[wo + k];
        a0 += wk * rows[p];
        a1 += wk * rows[p + 1];
        a2 += wk * rows[p + 2];
      }
      out[o + i] = a0 * sc0 + b0;
      out[o + i + 1] = a1 * sc1 + b1;
      out[o + i + 2] = a2 * sc2 + b2;
    }
  }
  return out;
}
