import { tf } from './tf';
import { BN_TRAINING, canFuseBatchNorm } from './batch-norm-training';

interface LayerVariable {
  read(): tf.Tensor;
  write(v: tf.Tensor): void;
}
/** The fields of tfjs-layers' BatchNormalization this subclass reads. */
interface BatchNormLayer extends tf.layers.Layer {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: LayerVariable;
  beta: LayerVariable;
  movingMean: LayerVariable;
  movingVariance: LayerVariable;
}
type BatchNormArgs = Parameters<typeof tf.layers.batchNormalization>[0];

/** tfjs-layers' BatchNormalization class (exported only through its serialization registry). */
function batchNormalizationClass(): new (args?: BatchNormArgs) => BatchNormLayer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap.BatchNormalization;
  if (!entry) throw new Error('tfjs-layers has not registered BatchNormalization; expected @tensorflow/tfjs 4.x');
  return entry[0] as unknown as new (args?: BatchNormArgs) => BatchNormLayer;
}

/**
 * tfjs-layers' BatchNormalization whose training-mode forward runs as one fused kernel
 * (BN_TRAINING: one read for the statistics, one pass for y, and a fused gradient) on the
 * wasm backend with our kernels. Everywhere else, and in inference, it is the stock layer.
 * It serialises as 'BatchNormalization', so saved models load into the stock class.
 */
export class FleetBatchNormalization extends batchNormalizationClass() {
  static className = 'BatchNormalization';

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = this.axis === -1 || this.axis === x.rank - 1;
    if (!kwargs.training || !lastAxis || !this.center || !this.scale || !canFuseBatchNorm(x)) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const [y, mean, variance] = tf.engine().runKernel(
        BN_TRAINING,
        { x, scale: this.gamma.read(), offset: this.beta.read() },
        { varianceEpsilon: this.epsilon } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      // The stock layer's moving averages, op for op: v ← v − (v − batch)·(1 − momentum).
      for (const [variable, value] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
        tf.tidy(() => {
          const orig = variable.read();
          variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - this.momentum)));
        });
      }
      return y;
    });
  }
}

/** Same arguments as tf.layers.batchNormalization. */
export function batchNormalization(args: BatchNormArgs): tf.layers.Layer {
  return new FleetBatchNormalization(args);
}
