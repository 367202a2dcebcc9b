import * as tf from '@tensorflow/tfjs';
import { ModelIoError } from './errors';
import { ExportMetadata } from './layers-export';
import { preprocessImage } from './preprocess';

export interface Prediction {
  classIndex: number;
  /** From `classNames`, else `class <index>`. */
  className: string;
  probability: number;
}

/**
 * Top-k classes for one image: NHWC [1, s, s, 3] (or [s, s, 3]) tensor, or Float32Array of
 * s·s·3 values at the model's input size. The zoo's models output logits; softmax is applied here.
 */
export function predictTopK(model: tf.LayersModel, image: tf.Tensor | Float32Array, k = 5, classNames?: string[]): Prediction[] {
  const [, h, w, c] = model.inputs[0].shape as number[];
  const probs = tf.tidy(() => {
    let x = image instanceof Float32Array ? tf.tensor(image) : image;
    if (x.size !== h * w * c) throw new ModelIoError('BAD_FORMAT', `image has ${x.size} values; model ${model.name} takes ${h}×${w}×${c}: preprocess to inputSize ${h}`);
    x = tf.reshape(x, [1, h, w, c]);
    return tf.softmax(model.predict(x) as tf.Tensor2D).dataSync();
  });
  const order = Array.from(probs.keys()).sort((a, b) => probs[b] - probs[a]).slice(0, k);
  return order.map((i) => ({ classIndex: i, className: classNames?.[i] ?? `class ${i}`, probability: probs[i] }));
}

/**
 * `fleet predict`: decode, preprocess with the export's metadata (inputSize from the model,
 * mean/std/classNames from its userDefinedMetadata when present) and take the top k.
 */
export async function predictImage(
  model: tf.LayersModel,
  image: Uint8Array,
  opts: { k?: number; classNames?: string[]; mean?: [number, number, number]; std?: [number, number, number]; cropFraction?: number } = {},
): Promise<Prediction[]> {
  const meta = (model.getUserDefinedMetadata() ?? {}) as ExportMetadata;
  const inputSize = model.inputs[0].shape[1] as number;
  const { data } = await preprocessImage(image, {
    inputSize, mean: opts.mean ?? meta.mean, std: opts.std ?? meta.std, cropFraction: opts.cropFraction ?? meta.cropFraction,
  });
  return predictTopK(model, data, opts.k ?? 5, opts.classNames ?? meta.classNames);
}
