import * as tf from '@tensorflow/tfjs';

/** Row i averages input [floor(i·n/o), ceil((i+1)·n/o)), as PyTorch's adaptive pooling. */
export function adaptivePoolMatrix(n: number, o: number): number[][] {
  const rows: number[][] = [];
  for (let i = 0; i < o; i++) {
    const start = Math.floor((i * n) / o);
    const end = Math.ceil(((i + 1) * n) / o);
    rows.push(Array.from({ length: n }, (_, j) => (j >= start && j < end ? 1 / (end - start) : 0)));
  }
  return rows;
}

/**
 * PyTorch's AdaptiveAvgPool2d(size): lets AlexNet keep its 6×6×256 classifier input (and so its
 * parameter count) at any input size. Two matrix products, so every backend has the gradient.
 */
export class AdaptiveAvgPool2D extends tf.layers.Layer {
  static readonly className = 'AdaptiveAvgPool2D';
  private readonly size: number;

  constructor(args: { name?: string; size: number }) {
    super({ name: args.name });
    this.size = args.size;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const s = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    return [s[0], this.size, this.size, s[3]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const [n, h, w, c] = x.shape;
      const o = this.size;
      const ph = tf.tensor2d(adaptivePoolMatrix(h, o)).transpose();
      const pw = tf.tensor2d(adaptivePoolMatrix(w, o)).transpose();
      // [n,h,w,c] -> [n,c,w,h] · Ph -> [n,c,w,o] -> [n,c,o,w] · Pw -> [n,c,o,o] -> [n,o,o,c]
      const byH = tf.matMul(tf.reshape(tf.transpose(x, [0, 3, 2, 1]), [n * c * w, h]), ph);
      const t = tf.transpose(tf.reshape(byH, [n, c, w, o]), [0, 1, 3, 2]);
      const byW = tf.matMul(tf.reshape(t, [n * c * o, w]), pw);
      return tf.transpose(tf.reshape(byW, [n, c, o, o]), [0, 2, 3, 1]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), size: this.size };
  }
}
