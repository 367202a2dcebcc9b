import { ModelIoError } from './errors';

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];

export interface PreprocessOptions {
  /** Output side in pixels. Default 224. */
  inputSize?: number;
  /** Per-channel mean of [0, 1] RGB. Default ImageNet's. */
  mean?: [number, number, number];
  /** Per-channel std of [0, 1] RGB. Default ImageNet's. */
  std?: [number, number, number];
  /** Resize the shorter side to inputSize / cropFraction, then centre-crop (torchvision eval: 0.875). 1 = no margin. Default 0.875. */
  cropFraction?: number;
}

/**
 * Evaluation preprocessing of one encoded image (JPEG, PNG, WebP…): shorter side to
 * inputSize/cropFraction, centre crop, RGB, (x/255 - mean)/std. Returns NHWC [1, s, s, 3] data.
 */
export async function preprocessImage(image: Uint8Array, opts: PreprocessOptions = {}): Promise<{ data: Float32Array; shape: [1, number, number, 3] }> {
  const { inputSize = 224, mean = IMAGENET_MEAN, std = IMAGENET_STD, cropFraction = 0.875 } = opts;
  if (!Number.isInteger(inputSize) || inputSize < 1) throw new ModelIoError('BAD_FORMAT', `inputSize must be a positive integer, got ${inputSize}`);
  if (!(cropFraction > 0 && cropFraction <= 1)) throw new ModelIoError('BAD_FORMAT', `cropFraction must be in (0, 1], got ${cropFraction}`);
  const sharp = (await import('sharp')).default;
  const resized = Math.round(inputSize / cropFraction);
  let raw: Buffer;
  try {
    const img = sharp(image, { failOn: 'error' }).rotate().removeAlpha().toColourspace('srgb');
    const meta = await sharp(image).metadata();
    const [w, h] = meta.orientation && meta.orientation >= 5 ? [meta.height!, meta.width!] : [meta.width!, meta.height!];
    const scale = resized / Math.min(w, h);
    const rw = Math.max(inputSize, Math.round(w * scale));
    const rh = Math.max(inputSize, Math.round(h * scale));
    raw = await img
      .resize(rw, rh, { kernel: 'lanczos3', fit: 'fill' })
      .extract({ left: Math.floor((rw - inputSize) / 2), top: Math.floor((rh - inputSize) / 2), width: inputSize, height: inputSize })
      .raw()
      .toBuffer();
  } catch (e) {
    throw new ModelIoError('BAD_FORMAT', `cannot decode image: ${(e as Error).message}`);
  }
  const data = new Float32Array(inputSize * inputSize * 3);
  for (let i = 0; i < data.length; i++) {
    const c = i % 3;
    data[i] = (raw[i] / 255 - mean[c]) / std[c];
  }
  return { data, shape: [1, inputSize, inputSize, 3] };
}
