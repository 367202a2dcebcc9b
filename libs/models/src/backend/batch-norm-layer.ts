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
  /** Set by deferBatchNormStats(): training passes record their moments there instead of updating the moving statistics. */
  deferral: BatchNormDeferral | null = null;

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: { training?: boolean }): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const lastAxis = this.axis === -1 || this.axis === x.rank - 1;
    if (kwargs.training && this.deferral) return this.deferredCall(x, lastAxis);
    if (!kwargs.training || !lastAxis || !this.center || !this.scale || !canFuseBatchNorm(x)) return super.call(inputs, kwargs);
    return tf.tidy(() => {
      const [y, mean, variance] = tf.engine().runKernel(
        BN_TRAINING,
        { x, scale: this.gamma.read(), offset: this.beta.read() },
        { varianceEpsilon: this.epsilon } as unknown as tf.NamedAttrMap,
      ) as tf.Tensor[];
      this.updateMovingStats(mean, variance);
      return y;
    });
  }

  /** Normalises with this pass's statistics and hands them to the deferral; the moving statistics wait for its commit(). */
  private deferredCall(x: tf.Tensor, lastAxis: boolean): tf.Tensor {
    if (!lastAxis || !this.center || !this.scale) throw new Error(`batch norm ${this.name}: deferred statistics need the channel axis last, with centre and scale`);
    const deferral = this.deferral!;
    return tf.tidy(() => {
      let y: tf.Tensor;
      let mean: tf.Tensor;
      let variance: tf.Tensor;
      if (canFuseBatchNorm(x)) {
        [y, mean, variance] = tf.engine().runKernel(
          BN_TRAINING,
          { x, scale: this.gamma.read(), offset: this.beta.read() },
          { varianceEpsilon: this.epsilon } as unknown as tf.NamedAttrMap,
        ) as tf.Tensor[];
      } else {
        // tfjs-layers' training normalisation (regularNormalizeBatchInTraining), op for op.
        const m = tf.moments(x, [...Array(x.rank - 1).keys()]);
        [mean, variance] = [m.mean, m.variance];
        y = tf.batchNorm(x, mean, variance, this.beta.read(), this.gamma.read(), this.epsilon);
      }
      deferral.record(this, mean, variance, x.size / x.shape[x.rank - 1]);
      return y;
    });
  }

  /** v ← v − (v − batch)·(1 − momentum), as the stock layer writes its moving averages. */
  updateMovingStats(mean: tf.Tensor, variance: tf.Tensor): void {
    for (const [variable, value] of [[this.movingMean, mean], [this.movingVariance, variance]] as const) {
      tf.tidy(() => {
        const orig = variable.read();
        variable.write(tf.sub(orig, tf.mul(tf.sub(orig, value), 1 - this.momentum)));
      });
    }
  }
}

/**
 * Deferred batch norm (torchgpipe's DeferredBatchNorm) for a step made of several passes
 * (micro-batches): each pass normalises with its own statistics, as it must for its
 * gradients, but the moving statistics are updated once per step, from the moments of all
 * the step's passes together: each layer's input over the whole mini-batch (biased variance,
 * as the stock layer uses), instead of one momentum step per micro-batch. The first batch norm
 * then moves exactly as in one pass over the whole batch; deeper ones see inputs normalised
 * per micro-batch above them, as every micro-batched run does. A pipeline and a single
 * process with the same micro-batches do the same arithmetic.
 */
export class BatchNormDeferral {
  private readonly pending = new Map<FleetBatchNormalization, { mean: tf.Tensor; variance: tf.Tensor; rows: number }[]>();

  constructor(private readonly layers: FleetBatchNormalization[]) {
    for (const l of layers) {
      if (l.deferral && l.deferral !== this) throw new Error(`batch norm ${l.name} already defers its statistics elsewhere`);
      l.deferral = this;
    }
  }

  /** Called by the layers: one pass's mean and biased variance over `rows` values per channel. */
  record(layer: FleetBatchNormalization, mean: tf.Tensor, variance: tf.Tensor, rows: number): void {
    const list = this.pending.get(layer) ?? [];
    list.push({ mean: tf.keep(mean.clone()), variance: tf.keep(variance.clone()), rows });
    this.pending.set(layer, list);
  }

  /** What was recorded since the last commit, per layer name (for inspection). */
  recorded(): Map<string, { mean: Float32Array; variance: Float32Array; rows: number }[]> {
    return new Map([...this.pending].map(([l, list]) => [l.name, list.map((p) => ({ mean: p.mean.dataSync() as Float32Array, variance: p.variance.dataSync() as Float32Array, rows: p.rows }))]));
  }

  /** Passes recorded since the last commit or discard. */
  get passes(): number {
    let most = 0;
    for (const list of this.pending.values()) most = Math.max(most, list.length);
    return most;
  }

  /** Updates every layer's moving statistics once from the passes recorded since the last commit. */
  commit(): void {
    for (const [layer, list] of this.pending) {
      tf.tidy(() => {
        const total = list.reduce((a, p) => a + p.rows, 0);
        const mean = tf.addN(list.map((p) => tf.mul(p.mean, p.rows / total)));
        // Σ nᵢ (σᵢ² + (μᵢ − μ)²) / N: the pooled biased variance
        const variance = tf.addN(list.map((p) => tf.mul(tf.add(p.variance, tf.square(tf.sub(p.mean, mean))), p.rows / total)));
        layer.updateMovingStats(mean, variance);
      });
    }
    this.discard();
  }

  /** Forgets the recorded passes (a step that failed). */
  discard(): void {
    for (const list of this.pending.values()) for (const p of list) tf.dispose([p.mean, p.variance]);
    this.pending.clear();
  }

  /** Back to updating the moving statistics in every training pass. */
  end(): void {
    this.discard();
    for (const l of this.layers) if (l.deferral === this) l.deferral = null;
  }
}

/** Defers the moving statistics of every batch-norm layer of `model` (see BatchNormDeferral). */
export function deferBatchNormStats(model: tf.LayersModel): BatchNormDeferral {
  return new BatchNormDeferral(model.layers.filter((l): l is FleetBatchNormalization => l instanceof FleetBatchNormalization));
}

/** Same arguments as tf.layers.batchNormalization. */
export function batchNormalization(args: BatchNormArgs): tf.layers.Layer {
  return new FleetBatchNormalization(args);
}
