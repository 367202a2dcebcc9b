import { accumulateInto, tf, tensorsFromBytes, tensorsToBytes } from '@tensorfleet/models';
import { TrainingError } from '../errors';
import { Sgd, SgdOptions } from '../optim/sgd';
import { decodeTensors, encodeTensors, NamedArray } from './state-bytes';
import { TrainerComm, WireFormat } from './comm';

export interface PartOptimizerOptions {
  optimizer: SgdOptions;
  /** The replicas of this part (data parallelism); null or a world of 1: nothing to reduce. */
  comm: TrainerComm | null;
  wire: WireFormat;
  bucketBytes?: number;
  /** How gradient buckets travel (Communicator allReduce `algorithm`). Default 'auto'. */
  allReduceAlgorithm?: 'ring' | 'hierarchical' | 'auto';
  /** Whether the models run with BN in training mode (their moving statistics move). */
  training: boolean;
  /** 'mean': BN moving statistics averaged across the replicas after each update (see Trainer). */
  syncBatchNormStats: 'mean' | 'none';
}

/**
 * The update half of a training step for the weights one rank holds (a whole model, a
 * pipeline stage, an AlexNet column): gradient buffers, their mean over the part's replicas
 * (with the BN moving statistics), and SGD. Every data-parallel, pipeline and column trainer
 * updates through one of these, so their arithmetic is the same op for op.
 */
export class PartOptimizer {
  readonly sgd: Sgd;
  readonly vars: tf.Variable[];
  /** Stable names of the trainable weights (layer/weight), which key the velocity buffers. */
  readonly varNames: string[];
  readonly gradBufs: Float32Array[];
  /** Every weight of the part, trainable and not, once each (layers may be shared by models). */
  readonly weights: { name: string; variable: tf.Variable }[];
  /** BN moving mean/variance variables synchronised after each update (empty when not needed). */
  private readonly bnStats: tf.Variable[];
  /** bnStats as of the last completed step (their all-reduced values): what restoreStats() goes back to. */
  private statsAtStep: Float32Array[] | null = null;

  constructor(models: tf.LayersModel[], private readonly opts: PartOptimizerOptions) {
    const seen = new Set<tf.Variable>();
    const unique = <W extends { read(): tf.Tensor; originalName: string }>(ws: W[]) =>
      ws.filter((w) => {
        const v = w.read() as tf.Variable;
        if (seen.has(v)) return false;
        seen.add(v);
        return true;
      });
    const trainable = unique(models.flatMap((m) => m.trainableWeights));
    const fixed = unique(models.flatMap((m) => m.nonTrainableWeights));
    this.vars = trainable.map((w) => w.read() as tf.Variable);
    this.varNames = trainable.map((w) => w.originalName);
    if (this.vars.length === 0) throw new TrainingError('INVALID_OPTIONS', 'the model has no trainable weights');
    seen.clear();
    this.weights = unique(models.flatMap((m) => m.weights)).map((w) => ({ name: w.originalName, variable: w.read() as tf.Variable }));
    this.gradBufs = this.vars.map((v) => new Float32Array(v.size));
    if (opts.syncBatchNormStats !== 'mean' && opts.syncBatchNormStats !== 'none') {
      throw new TrainingError('INVALID_OPTIONS', `syncBatchNormStats must be 'mean' or 'none', got ${String(opts.syncBatchNormStats)}`);
    }
    this.bnStats =
      opts.syncBatchNormStats === 'mean' && opts.training
        ? fixed.filter((w) => /moving_(mean|variance)(_\d+)?$/.test(w.originalName)).map((w) => w.read() as tf.Variable)
        : [];
    this.sgd = new Sgd(this.vars, opts.optimizer);
  }

  get replicas(): number {
    return this.opts.comm?.worldSize ?? 1;
  }

  /** Gradient data for each variable (null: none reached it) into the buffers: overwritten when `first`, else added. */
  addGrads(data: (Float32Array | null)[], first: boolean): void {
    data.forEach((d, i) => {
      const buf = this.gradBufs[i];
      if (first) {
        if (d) buf.set(d);
        else buf.fill(0);
      } else if (d) {
        for (let j = 0; j < buf.length; j++) buf[j] += d[j];
      }
    });
  }

  /**
   * Adds tensor gradients (index = variable index, null for none) into the buffers, then
   * disposes them: the same sums as addGrads() over their data(), read in place (accumulateInto).
   */
  addGradTensors(grads: (tf.Tensor | null)[], first: boolean): void {
    grads.forEach((g, i) => this.addGradTensor(i, g, first));
  }

  /** One variable's gradient (null: none reached it) into its buffer: overwritten when `first`, else added; disposes it. */
  addGradTensor(index: number, g: tf.Tensor | null, first: boolean): void {
    const buf = this.gradBufs[index];
    if (!g) {
      if (first) buf.fill(0);
      return;
    }
    try {
      accumulateInto(buf, g, first);
    } finally {
      g.dispose();
    }
  }

  /** Mean of the gradient buffers (and BN statistics) over the replicas; returns the reduced gradients. */
  async reduce(): Promise<Float32Array[]> {
    const comm = this.opts.comm;
    if (!comm || comm.worldSize <= 1) return this.gradBufs;
    const stats = this.bnStats.map((v) => new Float32Array(v.dataSync() as Float32Array));
    // 'auto': per bucket, the hierarchical all-reduce when the replicas span hosts of equal
    // size (the bucket's sum is then grouped by host, not the flat ring's order), else the ring
    const opts = { op: 'mean' as const, wire: this.opts.wire, bucketBytes: this.opts.bucketBytes, algorithm: this.opts.allReduceAlgorithm ?? ('auto' as const) };
    if (stats.length > 0 && this.opts.wire === 'fp32') {
      const all = await comm.allReduceMany([...this.gradBufs, ...stats], opts);
      this.assignStats((this.statsAtStep = all.slice(this.gradBufs.length)));
      return all.slice(0, this.gradBufs.length);
    }
    const reduced = await comm.allReduceMany(this.gradBufs, opts);
    // Moving variances are not worth rounding to 16 bits.
    if (stats.length > 0) this.assignStats((this.statsAtStep = await comm.allReduceMany(stats, { ...opts, wire: 'fp32' })));
    return reduced;
  }

  /** The BN statistics now are those of a completed step (a run's start: fresh, loaded or broadcast). */
  markStatsCommitted(): void {
    if (this.bnStats.length) this.statsAtStep = this.bnStats.map((v) => new Float32Array(v.dataSync() as Float32Array));
  }

  /**
   * Undoes what an unfinished step did to the replica-averaged BN statistics (each replica
   * updates them locally before the all-reduce averages them); false when there is no
   * completed step to go back to. The weights and velocity need no undo: apply() runs only
   * after the all-reduce.
   */
  restoreStats(): boolean {
    if (!this.bnStats.length) return true;
    if (!this.statsAtStep) return false;
    this.assignStats(this.statsAtStep);
    return true;
  }

  /** The SGD update with `grads` (what reduce() returned). */
  apply(grads: Float32Array[], lr: number): void {
    this.sgd.applyArrays(grads, lr);
  }

  /**
   * Whether a weight may be updated as soon as its gradient is complete, before the step's other
   * gradients are: true when there is nothing to reduce across replicas (one replica, no BN
   * statistics to average), so each weight's update depends on its own gradient alone.
   */
  get updatesEachWeight(): boolean {
    return this.replicas <= 1 && this.bnStats.length === 0;
  }

  /** The SGD update of only the variables at `indices`, with their gradient buffers as they are (updatesEachWeight). */
  applyEach(indices: readonly number[], lr: number): void {
    if (!this.updatesEachWeight) throw new TrainingError('INVALID_OPTIONS', 'a part with replicas to reduce (or BN statistics to average) updates all its weights at once: use reduceAndApply');
    this.sgd.applyArrays(this.gradBufs, lr, indices);
  }

  /** The end of every plan's step: reduce() over the replicas, then apply(); how long each took. */
  async reduceAndApply(lr: number): Promise<{ allReduceMs: number; updateMs: number }> {
    const t0 = performance.now();
    const reduced = await this.reduce();
    const t1 = performance.now();
    this.apply(reduced, lr);
    return { allReduceMs: t1 - t0, updateMs: performance.now() - t1 };
  }

  /** The velocity buffers, keyed `<weight>/velocity` (models' tensorsToBytes format). */
  optimizerBytes(): Uint8Array {
    return tensorsToBytes(this.optimizerTensors());
  }

  optimizerTensors(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.sgd.slots.map((s, i) => [`${this.varNames[i]}/velocity`, s]));
  }

  /** Velocity buffers from optimizerBytes() (or a checkpoint's merged parts) of the same weights. */
  loadOptimizer(stored: Record<string, { shape: number[]; data: Float32Array | Int32Array }>): void {
    const names = this.sgd.slots.map((_, i) => `${this.varNames[i]}/velocity`);
    const missing = names.filter((n) => !(n in stored));
    if (missing.length) {
      throw new TrainingError('STATE_MISMATCH', `optimizer state does not fit this model/optimizer: missing ${missing.slice(0, 3).join(', ')} (was momentum or the model changed?)`);
    }
    assignAll(this.sgd.slots, names.map((n) => ({ name: n, shape: stored[n].shape, values: stored[n].data as Float32Array })), 'optimizer');
  }

  /** Exactly these velocity buffers: the stored ones may not have more (a whole model's optimizerBytes). */
  loadOptimizerBytes(bytes: Uint8Array): void {
    const stored = tensorsFromBytes(bytes);
    const names = new Set(this.sgd.slots.map((_, i) => `${this.varNames[i]}/velocity`));
    const extra = Object.keys(stored).filter((n) => !names.has(n));
    if (extra.length) throw new TrainingError('STATE_MISMATCH', `optimizer state does not fit this model/optimizer: unexpected ${extra.slice(0, 3).join(', ')} (was momentum or the model changed?)`);
    this.loadOptimizer(stored);
  }

  /** Every weight by name, trainable and not (what the part writes in a checkpoint). */
  weightTensors(): Record<string, tf.Tensor> {
    return Object.fromEntries(this.weights.map((w) => [w.name, w.variable]));
  }

  /** Weights by name (a checkpoint's, maybe of more parts than this one): every weight of the part must be there. */
  loadWeights(stored: Record<string, { shape: number[]; data: Float32Array | Int32Array }>): void {
    const missing = this.weights.filter((w) => !(w.name in stored)).map((w) => w.name);
    if (missing.length) throw new TrainingError('STATE_MISMATCH', `the checkpoint has no ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ` (+${missing.length - 3})` : ''}: was it written by this model?`);
    assignAll(this.weights.map((w) => w.variable), this.weights.map((w) => ({ name: w.name, shape: stored[w.name].shape, values: stored[w.name].data as Float32Array })), 'checkpoint');
  }

  /** Weights (trainable and not) and, once trained, velocity buffers, plus `meta`: the initial-state broadcast. */
  packState(meta: Record<string, unknown>): Uint8Array {
    // Before the first update the velocity is zero everywhere: not worth sending (half the bytes).
    const velocity = meta.step !== 0;
    const tensors = [...this.weights.map((w) => named(w.name, w.variable)), ...(velocity ? this.sgd.slots.map((s, i) => named(`${this.vars[i].name}/velocity`, s)) : [])];
    return encodeTensors(tensors, { ...meta, weights: this.weights.length, velocity });
  }

  /** Applies what packState() sent; returns its meta. */
  unpackState(bytes: Uint8Array): Record<string, unknown> {
    const { meta, tensors } = decodeTensors(bytes);
    const m = meta as { weights: number; velocity: boolean } & Record<string, unknown>;
    if (m.weights !== this.weights.length) {
      throw new TrainingError('STATE_MISMATCH', `root sent ${m.weights} model weights, this rank's model has ${this.weights.length}: every rank must build the same model and optimizer`);
    }
    const targets = [...this.weights.map((w) => w.variable), ...(m.velocity ? this.sgd.slots : [])];
    assignAll(targets, tensors, 'broadcast state');
    if (!m.velocity) for (const s of this.sgd.slots) tf.tidy(() => s.assign(tf.zerosLike(s)));
    return m;
  }

  dispose(): void {
    this.sgd.dispose();
  }

  private assignStats(values: Float32Array[]): void {
    // Copies: the cpu backend would keep a reference to the array otherwise.
    this.bnStats.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(values[i].slice(), v.shape, 'float32'))));
  }
}

function named(name: string, t: tf.Tensor): NamedArray {
  return { name, shape: t.shape, values: new Float32Array(t.dataSync() as Float32Array) };
}

export function assignAll(targets: tf.Variable[], tensors: NamedArray[], what: string): void {
  if (targets.length !== tensors.length) {
    throw new TrainingError('STATE_MISMATCH', `${what}: ${tensors.length} tensors for ${targets.length} variables; was it saved from the same model and optimizer?`);
  }
  targets.forEach((v, i) => {
    const t = tensors[i];
    if (t.shape.length !== v.shape.length || t.shape.some((d, j) => d !== v.shape[j])) {
      throw new TrainingError('STATE_MISMATCH', `${what}: tensor ${i} (${t.name}) has shape [${t.shape}], variable ${v.name} has [${v.shape}]`);
    }
  });
  // Fresh copies: the cpu backend keeps a reference to the array a tensor is built from.
  targets.forEach((v, i) => tf.tidy(() => v.assign(tf.tensor(tensors[i].values.slice(), tensors[i].shape, 'float32'))));
}
