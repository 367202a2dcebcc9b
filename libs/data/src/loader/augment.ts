import sharp from 'sharp';
import { Rng } from '../rng';
import { resizeNormalise } from './resize';
import { decodeJpegRgb, Rect } from './jpeg-native';

export type Pipeline = 'resnet' | 'alexnet' | 'eval' | 'tencrop' | 'small' | 'none';
export const PIPELINES: Pipeline[] = ['resnet', 'alexnet', 'eval', 'tencrop', 'small', 'none'];

/** Crops each image yields: 10 for AlexNet's ten-crop evaluation, else 1. */
export function cropsPerImage(pipeline: Pipeline): number {
  return pipeline === 'tencrop' ? 10 : 1;
}

export interface AugmentConfig {
  pipeline: Pipeline;
  inputSize: number;
  mean: number[];
  std: number[];
  pca?: { eigval: number[]; eigvec: number[][] };
}

/** PCA lighting strength (AlexNet, Krizhevsky et al. 2012). */
const LIGHTING_STD = 0.1;

interface Raw {
  data: Uint8Array;
  w: number;
  h: number;
  c: number;
}

/**
 * No colour management, as torchvision's PIL decode has none: an embedded ICC profile is ignored by
 * libvips as by libjpeg-turbo, so both decoders give the same pixels.
 */
function sharpOf(input: Buffer): sharp.Sharp {
  return sharp(input, { ignoreIcc: true });
}

/**
 * `rect` of the image decoded by libjpeg-turbo in this thread, or null for what it leaves to sharp
 * (no addon, not a JPEG, CMYK, or an error). Synchronous, and its bytes are a per-thread buffer: callers resample
 * them before anything awaits, which is why each case below writes `native(...) ?? await raw(...)`.
 */
function native(input: Buffer, size: { width: number; height: number }, rect: Rect = { left: 0, top: 0, ...size }): Raw | null {
  let data: Uint8Array | null;
  try {
    data = decodeJpegRgb(input, size, rect);
  } catch {
    // Corrupt, or a JPEG this libjpeg-turbo cannot crop: sharp decides (it throws on a corrupt one,
    // so the sample is still skipped and counted, and a valid one is never lost).
    return null;
  }
  return data && { data, w: rect.width, h: rect.height, c: 3 };
}

async function raw(img: sharp.Sharp): Promise<Raw> {
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, w: info.width, h: info.height, c: info.channels };
}

/**
 * Decodes one image and applies the pipeline; all randomness comes from `seed`, so the result
 * depends only on (bytes, seed, config) — whichever thread runs it.
 * Returns cropsPerImage × inputSize × inputSize × 3 floats (HWC per crop), normalised with mean/std.
 */
export async function decodeAugment(bytes: Uint8Array, seed: number, cfg: AugmentConfig, out?: Float32Array): Promise<Float32Array> {
  const rng = new Rng(seed);
  const s = cfg.inputSize;
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const resizeShort = Math.round((s * 256) / 224);
  switch (cfg.pipeline) {
    // Every resize is bilinear (antialiased when shrinking), torchvision's default for Resize and
    // RandomResizedCrop. Except in 'small' (CIFAR-sized images, resized by libvips only when their
    // size differs), libjpeg-turbo (or libvips) decodes, cropping where it can, and resize.ts
    // resamples straight into the normalised float32 frame, computing only the window that is kept.
    case 'none': {
      const r = native(input, await dimensions(input)) ?? (await raw(sharpOf(input)));
      return resized(r, s, s, 0, 0, s, false, cfg, null, out);
    }
    case 'eval': {
      const r = native(input, await dimensions(input)) ?? (await raw(sharpOf(input)));
      const [w, h] = shortSideTo(r.w, r.h, resizeShort);
      return resized(r, w, h, (w - s) >> 1, (h - s) >> 1, s, false, cfg, null, out);
    }
    case 'small': {
      let img = sharpOf(input);
      const m = await dimensions(input);
      if (m.width !== s || m.height !== s) img = img.resize(s, s, { fit: 'fill', kernel: 'linear' });
      const r = await raw(img);
      const dx = rng.int(9) - 4;
      const dy = rng.int(9) - 4;
      const flip = rng.next() < 0.5;
      return toFloat(r, dx, dy, s, flip, cfg, out);
    }
    case 'resnet': {
      const m = await dimensions(input);
      const rect = randomResizedCrop(m.width, m.height, rng);
      const flip = rng.next() < 0.5;
      // Only the crop's rows and columns are decoded (libvips, the fallback, decodes every column
      // down to the crop's bottom row).
      const r = native(input, m, rect) ?? (await raw(sharpOf(input).extract(rect)));
      return resized(r, s, s, 0, 0, s, flip, cfg, null, out);
    }
    case 'tencrop': {
      // AlexNet's test-time augmentation (Krizhevsky et al. 2012) in torchvision's TenCrop order: the
      // five crops of the image, then the five crops of its mirror image (whose top-left crop is the
      // mirrored top-right one). The centre is placed as in 'eval'. The crops overlap, so the image
      // is resampled once and the crops are cut from that (the same values a resize per crop gives).
      const r = native(input, await dimensions(input)) ?? (await raw(sharpOf(input)));
      const [w, h] = shortSideTo(r.w, r.h, resizeShort);
      const all = resizeNormalise({ ...sourceOf(r), outWidth: w, outHeight: h, x0: 0, y0: 0, windowWidth: w, windowHeight: h, flip: false, ...normalisation(cfg, null), out: new Float32Array(w * h * 3) });
      const target = out ?? new Float32Array(10 * s * s * 3);
      const frame = s * s * 3;
      const at = tenCropOrigins(w, h, s);
      for (let k = 0; k < 10; k++) {
        const [x, y] = at[k % 5];
        // A crop at x of the mirror image is the mirror of the crop at w - s - x.
        cutCrop(all, w, k < 5 ? x : w - s - x, y, s, k >= 5, target.subarray(k * frame, (k + 1) * frame));
      }
      return target;
    }
    case 'alexnet': {
      const r = native(input, await dimensions(input)) ?? (await raw(sharpOf(input)));
      const [w, h] = shortSideTo(r.w, r.h, resizeShort);
      const x = rng.int(w - s + 1);
      const y = rng.int(h - s + 1);
      const flip = rng.next() < 0.5;
      return resized(r, w, h, x, y, s, flip, cfg, lighting(cfg, rng), out);
    }
  }
}

/** The size a w × h image resizes to with its shorter side at `short` (libvips' rounding of the longer). */
function shortSideTo(w: number, h: number, short: number): [number, number] {
  return w <= h ? [short, Math.round((h * short) / w)] : [Math.round((w * short) / h), short];
}

/**
 * The s × s window at (x0, y0) of `r` resampled to w × h, mirrored if asked, normalised as
 * (v/255 + delta - mean) / std per channel.
 */
function resized(r: Raw, w: number, h: number, x0: number, y0: number, s: number, flip: boolean, cfg: AugmentConfig, delta: number[] | null, target?: Float32Array): Float32Array {
  const out = target ?? new Float32Array(s * s * 3);
  return resizeNormalise({ ...sourceOf(r), outWidth: w, outHeight: h, x0, y0, windowWidth: s, windowHeight: s, flip, ...normalisation(cfg, delta), out });
}

function sourceOf(r: Raw): { src: Uint8Array; width: number; height: number; channels: number } {
  return { src: r.data, width: r.w, height: r.h, channels: r.c };
}

/** The s × s crop at (x0, y0) of a w-wide float32 HWC image, mirrored if asked. */
function cutCrop(img: Float32Array, w: number, x0: number, y0: number, s: number, flip: boolean, out: Float32Array): void {
  for (let y = 0; y < s; y++) {
    const row = ((y0 + y) * w + x0) * 3;
    if (!flip) {
      out.set(img.subarray(row, row + s * 3), y * s * 3);
      continue;
    }
    for (let x = 0, o = y * s * 3, i = row + (s - 1) * 3; x < s; x++, o += 3, i -= 3) {
      out[o] = img[i];
      out[o + 1] = img[i + 1];
      out[o + 2] = img[i + 2];
    }
  }
}

/**
 * Per channel, value (0–255) · scale + bias = (value/255 + delta − mean) / std: the normalisation
 * the resize applies and the table below holds.
 */
function normalisation(cfg: AugmentConfig, delta: number[] | null): { scale: number[]; bias: number[] } {
  return {
    scale: cfg.std.map((sd) => 1 / (255 * sd)),
    bias: cfg.std.map((sd, c) => ((delta ? delta[c] : 0) - cfg.mean[c]) / sd),
  };
}

/** Width and height from the JPEG SOF or PNG IHDR header (no libvips call), else sharp's metadata. */
export async function dimensions(buf: Buffer): Promise<{ width: number; height: number }> {
  if (buf.length > 24 && buf.readUInt32BE(0) === 0x89504e47 && buf.toString('latin1', 12, 16) === 'IHDR') {
    return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
  }
  if (buf.length > 4 && buf[0] === 0xff && buf[1] === 0xd8) {
    let i = 2;
    while (i + 9 < buf.length && buf[i] === 0xff) {
      const marker = buf[i + 1];
      if (marker === 0xff) {
        i++;
        continue;
      }
      const len = buf.readUInt16BE(i + 2);
      // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { width: buf.readUInt16BE(i + 7), height: buf.readUInt16BE(i + 5) };
      }
      i += 2 + len;
    }
  }
  const m = await sharp(buf).metadata();
  return { width: m.width ?? 1, height: m.height ?? 1 };
}

/** torchvision RandomResizedCrop parameters: scale 0.08–1, log-uniform ratio 3/4–4/3, 10 tries then centre crop. */
export function randomResizedCrop(w: number, h: number, rng: Rng): { left: number; top: number; width: number; height: number } {
  const area = w * h;
  const logLo = Math.log(3 / 4);
  const logHi = Math.log(4 / 3);
  for (let i = 0; i < 10; i++) {
    const target = area * rng.uniform(0.08, 1);
    const ratio = Math.exp(rng.uniform(logLo, logHi));
    const cw = Math.round(Math.sqrt(target * ratio));
    const ch = Math.round(Math.sqrt(target / ratio));
    if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
      return { left: rng.int(w - cw + 1), top: rng.int(h - ch + 1), width: cw, height: ch };
    }
  }
  const ratio = w / h;
  let cw = w;
  let ch = h;
  if (ratio < 3 / 4) ch = Math.round(w / (3 / 4));
  else if (ratio > 4 / 3) cw = Math.round(h * (4 / 3));
  cw = Math.min(cw, w);
  ch = Math.min(ch, h);
  return { left: (w - cw) >> 1, top: (h - ch) >> 1, width: cw, height: ch };
}

/** Top-left corners of the five crops of a w × h image: top-left, top-right, bottom-left, bottom-right, centre. */
export function tenCropOrigins(w: number, h: number, s: number): [number, number][] {
  return [[0, 0], [w - s, 0], [0, h - s], [w - s, h - s], [(w - s) >> 1, (h - s) >> 1]];
}

/**
 * RGB offset Σ αᵢ √λᵢ vᵢ with αᵢ ~ N(0, 0.1²). λ are covariance eigenvalues in [0,1] pixel units,
 * so √λ is the std along each principal axis (the scale fb.resnet.torch's ImageNet constants use).
 */
function lighting(cfg: AugmentConfig, rng: Rng): number[] | null {
  if (!cfg.pca) return null;
  const d = [0, 0, 0];
  for (let i = 0; i < 3; i++) {
    const a = rng.normal() * LIGHTING_STD * Math.sqrt(Math.max(0, cfg.pca.eigval[i]));
    for (let k = 0; k < 3; k++) d[k] += a * cfg.pca.eigvec[i][k];
  }
  return d;
}

/**
 * (v/255 - mean) / std for each channel and byte value: one table read per sample instead of a
 * multiply-add, and the same float32 values the arithmetic gives (same expression, same rounding).
 */
function normaliseTable(cfg: AugmentConfig): Float32Array {
  const cached = tables.get(cfg);
  if (cached) return cached;
  const { scale, bias } = normalisation(cfg, null);
  const t = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) t[c * 256 + v] = v * scale[c] + bias[c];
  tables.set(cfg, t);
  return t;
}
const tables = new WeakMap<AugmentConfig, Float32Array>();

/** Crops s×s at (x0, y0) (outside the image reads as 0 = the pad), optionally mirrored, to normalised floats. */
function toFloat(r: Raw, x0: number, y0: number, s: number, flip: boolean, cfg: AugmentConfig, target?: Float32Array): Float32Array {
  const out = target ?? new Float32Array(s * s * 3);
  const d = r.data;
  const c = r.c;
  const t = normaliseTable(cfg);
  const g1 = c < 3 ? 0 : 1;
  const g2 = c < 3 ? 0 : 2;
  const inside = x0 >= 0 && y0 >= 0 && x0 + s <= r.w && y0 + s <= r.h;
  for (let y = 0; y < s; y++) {
    const sy = y + y0;
    let o = y * s * 3;
    if (inside) {
      // Fast path: the whole row is inside the image.
      const row = (sy * r.w + x0) * c;
      const step = flip ? -c : c;
      let i = flip ? row + (s - 1) * c : row;
      for (let x = 0; x < s; x++, i += step, o += 3) {
        out[o] = t[d[i]];
        out[o + 1] = t[256 + d[i + g1]];
        out[o + 2] = t[512 + d[i + g2]];
      }
      continue;
    }
    for (let x = 0; x < s; x++, o += 3) {
      const sx = (flip ? s - 1 - x : x) + x0;
      const outside = sy < 0 || sy >= r.h || sx < 0 || sx >= r.w;
      const i = (sy * r.w + sx) * c;
      out[o] = t[outside ? 0 : d[i]];
      out[o + 1] = t[256 + (outside ? 0 : d[i + g1])];
      out[o + 2] = t[512 + (outside ? 0 : d[i + g2])];
    }
  }
  return out;
}
