import sharp from 'sharp';
import { Rng } from '../rng';

export type Pipeline = 'resnet' | 'alexnet' | 'eval' | 'small' | 'none';
export const PIPELINES: Pipeline[] = ['resnet', 'alexnet', 'eval', 'small', 'none'];

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
  data: Buffer;
  w: number;
  h: number;
  c: number;
}

async function raw(img: sharp.Sharp): Promise<Raw> {
  const { data, info } = await img.removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, w: info.width, h: info.height, c: info.channels };
}

/**
 * Decodes one image and applies the pipeline; all randomness comes from `seed`, so the result
 * depends only on (bytes, seed, config) — whichever thread runs it.
 * Returns inputSize × inputSize × 3 floats (HWC), normalised with mean/std.
 */
export async function decodeAugment(bytes: Uint8Array, seed: number, cfg: AugmentConfig): Promise<Float32Array> {
  const rng = new Rng(seed);
  const s = cfg.inputSize;
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const resizeShort = Math.round((s * 256) / 224);
  switch (cfg.pipeline) {
    case 'none': {
      const r = await raw(sharp(input).resize(s, s, { fit: 'fill' }));
      return toFloat(r, 0, 0, s, false, cfg, null);
    }
    case 'eval': {
      const r = await raw(sharp(input).resize(resizeShort, resizeShort, { fit: 'outside' }));
      return toFloat(r, (r.w - s) >> 1, (r.h - s) >> 1, s, false, cfg, null);
    }
    case 'small': {
      let img = sharp(input);
      const m = await img.metadata();
      if (m.width !== s || m.height !== s) img = img.resize(s, s, { fit: 'fill' });
      const r = await raw(img);
      const dx = rng.int(9) - 4;
      const dy = rng.int(9) - 4;
      const flip = rng.next() < 0.5;
      return toFloat(r, dx, dy, s, flip, cfg, null);
    }
    case 'resnet': {
      const m = await sharp(input).metadata();
      const rect = randomResizedCrop(m.width ?? 1, m.height ?? 1, rng);
      const flip = rng.next() < 0.5;
      const r = await raw(sharp(input).extract(rect).resize(s, s, { fit: 'fill' }));
      return toFloat(r, 0, 0, s, flip, cfg, null);
    }
    case 'alexnet': {
      const r = await raw(sharp(input).resize(resizeShort, resizeShort, { fit: 'outside' }));
      const x = rng.int(r.w - s + 1);
      const y = rng.int(r.h - s + 1);
      const flip = rng.next() < 0.5;
      return toFloat(r, x, y, s, flip, cfg, lighting(cfg, rng));
    }
  }
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

/** Crops s×s at (x0, y0) (outside the image reads as 0 = the pad), optionally mirrored, to normalised floats. */
function toFloat(r: Raw, x0: number, y0: number, s: number, flip: boolean, cfg: AugmentConfig, delta: number[] | null): Float32Array {
  const out = new Float32Array(s * s * 3);
  const scale = [0, 1, 2].map((k) => 1 / (255 * cfg.std[k]));
  const bias = [0, 1, 2].map((k) => ((delta ? delta[k] : 0) - cfg.mean[k]) / cfg.std[k]);
  const grey = r.c < 3;
  for (let y = 0; y < s; y++) {
    const sy = y + y0;
    for (let x = 0; x < s; x++) {
      const sx = (flip ? s - 1 - x : x) + x0;
      const o = (y * s + x) * 3;
      if (sy < 0 || sy >= r.h || sx < 0 || sx >= r.w) {
        for (let k = 0; k < 3; k++) out[o + k] = bias[k];
        continue;
      }
      const i = (sy * r.w + sx) * r.c;
      for (let k = 0; k < 3; k++) out[o + k] = r.data[grey ? i : i + k] * scale[k] + bias[k];
    }
  }
  return out;
}
