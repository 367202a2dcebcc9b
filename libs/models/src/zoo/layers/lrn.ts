import * as tf from '@tensorflow/tfjs';

export interface LrnArgs {
  name?: string;
  /** Channels in the window, n (odd). AlexNet: 5. */
  size: number;
  /** Scaled by 1/size, as PyTorch's LocalResponseNorm and Caffe. AlexNet: 1e-4. */
  alpha: number;
  /** AlexNet: 0.75. */
  beta: number;
  /** AlexNet: 2. */
  k: number;
}

/**
 * Local response normalisation across channels (Krizhevsky et al. 2012, §3.3):
 * b_c = a_c / (k + α/n · Σ_{|c'-c| ≤ (n-1)/2} a_c'²)^β, over `tf.localResponseNormalization`,
 * whose alpha multiplies the plain sum, hence alpha/n and depthRadius (n-1)/2.
 */
export class LocalResponseNorm extends tf.layers.Layer {
  static readonly className = 'LocalResponseNorm';
  private readonly args: LrnArgs;

  constructor(args: LrnArgs) {
    super({ name: args.name });
    if (!(args.size >= 1) || args.size % 2 !== 1) throw new Error(`LocalResponseNorm ${args.name}: size must be odd, got ${args.size}`);
    this.args = args;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape | tf.Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
    const { size, alpha, beta, k } = this.args;
    return tf.localResponseNormalization(x, (size - 1) / 2, k, alpha / size, beta);
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { name: _name, ...rest } = this.args;
    return { ...super.getConfig(), ...rest };
  }
}
