import { tf } from '@tensorfleet/models';

/** How the model's output is to be read: raw logits, or probabilities from a final softmax. */
export type OutputKind = 'logits' | 'probabilities';

/** 'probabilities' when the last layer ends in a softmax activation, else 'logits'. */
export function detectOutputKind(model: tf.LayersModel): OutputKind {
  const last = model.layers[model.layers.length - 1];
  const activation = (last?.getConfig() as { activation?: unknown }).activation;
  return activation === 'softmax' ? 'probabilities' : 'logits';
}

/** log-probabilities [n, C] from the model output. */
export function logProbs(output: tf.Tensor, kind: OutputKind): tf.Tensor {
  // log(p) of a softmax output loses precision for tiny p; the clip keeps it finite.
  return kind === 'logits' ? tf.logSoftmax(output) : tf.log(tf.clipByValue(output, 1e-7, 1));
}

/** Per-sample softmax cross-entropy [n]. */
export function crossEntropy(output: tf.Tensor, labels: tf.Tensor1D, kind: OutputKind): tf.Tensor1D {
  const numClasses = output.shape[output.shape.length - 1] as number;
  return tf.neg(tf.sum(tf.mul(tf.oneHot(labels, numClasses), logProbs(output, kind)), 1)) as tf.Tensor1D;
}

/** Number of samples whose label is among the top `k` outputs (k clipped to the class count). */
export function topKCorrect(output: tf.Tensor, labels: tf.Tensor1D, k: number): tf.Scalar {
  const numClasses = output.shape[output.shape.length - 1] as number;
  const { indices } = tf.topk(output as tf.Tensor2D, Math.min(k, numClasses));
  const hit = tf.equal(indices, tf.expandDims(labels, 1));
  return tf.sum(tf.cast(tf.any(hit, 1), 'float32'));
}
