import sharp from 'sharp';
import { AugmentConfig, decodeAugment, dimensions, randomResizedCrop } from '../loader/augment';
import { Rng } from '../rng';
import { resizeNormalise } from '../loader/resize';

export interface StageRow {
  stage: string;
  /** CPU milliseconds per image, the smallest of the rounds. */
  cpuMs: number;
}

type Step = (img: Buffer, i: number) => Promise<unknown>;

/**
 * Where a decode thread's time goes, per image: each step alone on this thread with one libvips
 * thread, the steps interleaved image by image, the fastest of `rounds` rounds kept (the host is shared). Differences of steps
 * give the stages; the whole worker call is measured as well, so the parts can be checked to add up.
 */
export async function runStageBench(jpegs: Buffer[], inputSize: number, rounds = 5): Promise<StageRow[]> {
  const cfg: AugmentConfig = { pipeline: 'resnet', inputSize, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] };
  const out = new Float32Array(inputSize * inputSize * 3);
  const rects = await Promise.all(jpegs.map(async (b, i) => {
    const d = await dimensions(b);
    return randomResizedCrop(d.width, d.height, new Rng(i));
  }));
  const s = inputSize;
  const steps: Record<string, Step> = {
    header: (b) => dimensions(b),
    fullDecode: (b) => sharp(b).raw().toBuffer(),
    crop: (b, i) => sharp(b).extract(rects[i]).raw().toBuffer(),
    cropResize: async (b, i) => {
      const { data, info } = await sharp(b).extract(rects[i]).raw().toBuffer({ resolveWithObject: true });
      resizeNormalise({ src: data, width: info.width, height: info.height, channels: info.channels, outWidth: s, outHeight: s, x0: 0, y0: 0, windowWidth: s, windowHeight: s, flip: i % 2 === 1, scale: [1, 1, 1], bias: [0, 0, 0], out });
    },
    cropLinear: (b, i) => sharp(b).extract(rects[i]).resize(s, s, { fit: 'fill', kernel: 'linear' }).raw().toBuffer(),
    cropLanczos: (b, i) => sharp(b).extract(rects[i]).resize(s, s, { fit: 'fill' }).raw().toBuffer(),
    worker: (b, i) => decodeAugment(b, i, cfg, out),
  };
  const before = sharp.concurrency();
  sharp.concurrency(1);
  const best: Record<string, number> = {};
  try {
    for (let r = 0; r < rounds; r++) {
      // Image by image, every step in turn: load from other processes hits all steps alike.
      const sum: Record<string, number> = {};
      for (let i = 0; i < jpegs.length; i++) {
        for (const [name, step] of Object.entries(steps)) {
          const c0 = process.cpuUsage();
          await step(jpegs[i], i);
          const c = process.cpuUsage(c0);
          sum[name] = (sum[name] ?? 0) + (c.user + c.system) / 1000;
        }
      }
      for (const name of Object.keys(steps)) best[name] = Math.min(best[name] ?? Infinity, sum[name] / jpegs.length);
    }
  } finally {
    sharp.concurrency(before);
  }
  return [
    { stage: 'JPEG header (size, for the crop)', cpuMs: best.header },
    { stage: 'decode to the crop\'s bottom row + crop', cpuMs: best.crop },
    { stage: '  (decode of the whole image, for comparison)', cpuMs: best.fullDecode },
    { stage: `resize to ${s} + mirror + normalise into float32 (resize.wat)`, cpuMs: best.cropResize - best.crop },
    { stage: `  (libvips' bilinear resize alone, for comparison)`, cpuMs: best.cropLinear - best.crop },
    { stage: `  (libvips' lanczos3 resize alone, for comparison)`, cpuMs: best.cropLanczos - best.crop },
    { stage: 'the rest (random draws, result buffer)', cpuMs: best.worker - best.cropResize - best.header },
    { stage: 'decode thread total (decodeAugment)', cpuMs: best.worker },
  ];
}
