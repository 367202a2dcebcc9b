import * as tf from '@tensorflow/tfjs';

/**
 * Parameter-free shortcut, option A of He et al. 2015 (§4.2, CIFAR): take every `stride`-th
 * pixel (x[:, ::s, ::s] in PyTorch) and zero-pad the new channels evenly on both sides.
 * Built from pad/reshape/slice so that every backend has its gradient.
 */
export class PadShortcut extends tf.layers.Layer {
  static readonly className = 'PadShortcut';
  private readonly stride: number;
  private readonly channels: number;

  constructor(args: { name?: string; stride: number; channels: number }) {
    super({ name: args.name });
    this.stride = args.stride;
    this.channels = args.channels;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [n, h, w] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const sub = (d: number | null) => (d == null ? null : Math.ceil(d / this.stride));
    return [n, sub(h), sub(w), this.channels];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const s = this.stride;
      if (s > 1) {
        const [n, h, w, c] = x.shape;
        const h2 = Math.ceil(h / s);
        const w2 = Math.ceil(w / s);
        x = tf.pad(x, [[0, 0], [0, h2 * s - h], [0, w2 * s - w], [0, 0]]);
        const six = tf.reshape(x, [n, h2, s, w2, s, c]);
        x = tf.reshape(tf.slice(six, [0, 0, 0, 0, 0, 0], [n, h2, 1, w2, 1, c]), [n, h2, w2, c]);
      }
      const extra = this.channels - x.shape[3];
      const before = Math.floor(extra / 2);
      return tf.pad(x, [[0, 0], [0, 0], [0, 0], [before, extra - before]]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), stride: this.stride, channels: this.channels };
  }
}
