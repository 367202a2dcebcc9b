import sharp from 'sharp';
import { AugmentConfig, decodeAugment, dimensions, randomResizedCrop } from '../loader/augment';
import { Rng } from '../rng';
import { resizeNormalise } from '../loader/resize';
import { decodeJpegRgb, jpegDecoder } from '../loader/jpeg-native';

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
  const sizes = await Promise.all(jpegs.map((b) => dimensions(b)));
  const rects = sizes.map((d, i) => randomResizedCrop(d.width, d.height, new Rng(i)));
  const s = inputSize;
  const native = jpegDecoder().name === 'libjpeg-turbo';
  const sharpCrop = async (b: Buffer, i: number) => {
    const { data, info } = await sharp(b).extract(rects[i]).raw().toBuffer({ resolveWithObject: true });
    return { data, width: info.width, height: info.height, channels: info.channels };
  };
  // The crop as decodeAugment decodes it: libjpeg-turbo when the addon is built, else sharp.
  const crop = async (b: Buffer, i: number) => {
    const data = native ? decodeJpegRgb(b, sizes[i], rects[i]) : null;
    return data ? { data, width: rects[i].width, height: rects[i].height, channels: 3 } : sharpCrop(b, i);
  };
  const steps: Record<string, Step> = {
    header: (b) => dimensions(b),
    fullDecode: (b) => sharp(b).raw().toBuffer(),
    sharpCrop,
    crop,
    cropResize: async (b, i) => {
      const c = await crop(b, i);
      resizeNormalise({ src: c.data, width: c.width, height: c.height, channels: c.channels, outWidth: s, outHeight: s, x0: 0, y0: 0, windowWidth: s, windowHeight: s, flip: i % 2 === 1, scale: [1, 1, 1], bias: [0, 0, 0], out });
    },
    cropLinear: (b, i) => sharp(b).extract(rects[i]).resize(s, s, { fit: 'fill', kernel: 'linear' }).raw().toBuffer(),
    cropLanczos: (b, i) => sharp(b).extract(rects[i]).resize(s, s, { fit: 'fill' }).raw().toBuffer(),
    worker: (b, i) => decodeAugment(b, i, cfg, out),
  };
  if (native) steps.nativeFull = async (b, i) => decodeJpegRgb(b, sizes[i], { left: 0, top: 0, ...sizes[i] });
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
    ...(native
      ? [
          { stage: "decode the crop's rows and columns (libjpeg-turbo, in this thread)", cpuMs: best.crop },
          { stage: '  (libjpeg-turbo, whole image, for comparison)', cpuMs: best.nativeFull },
        ]
      : []),
    { stage: `${native ? '  (' : ''}sharp: decode to the crop's bottom row + crop${native ? ', for comparison)' : ''}`, cpuMs: best.sharpCrop },
    { stage: '  (sharp: whole image, for comparison)', cpuMs: best.fullDecode },
    { stage: `resize to ${s} + mirror + normalise into float32 (resize.wat)`, cpuMs: best.cropResize - best.crop },
    { stage: `  (libvips' bilinear resize alone, for comparison)`, cpuMs: best.cropLinear - best.sharpCrop },
    { stage: `  (libvips' lanczos3 resize alone, for comparison)`, cpuMs: best.cropLanczos - best.sharpCrop },
    { stage: 'the rest (random draws, result buffer)', cpuMs: best.worker - best.cropResize - best.header },
    { stage: 'decode thread total (decodeAugment)', cpuMs: best.worker },
  ];
}
