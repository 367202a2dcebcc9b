import { BatchNormDeferral, deferBatchNormStats, tf, weightsFromBytes, weightsToBytes } from '@tensorfleet/models';
import { TrainingError } from '../errors';
import { Sgd, SgdOptions } from '../optim/sgd';
import { LrSchedule, LrScheduleState } from '../schedule/lr-schedule';
import { TrainerComm, WireFormat } from './comm';
import { crossEntropy, detectOutputKind, OutputKind, topKCorrect } from './metrics';
import { PartOptimizer } from './part-optimizer';

export interface TrainerOptions {
  model: tf.LayersModel;
  optimizer: SgdOptions;
  schedule: LrSchedule;
  /** Data-parallel group; null or omitted trains single-process. */
  comm?: TrainerComm | null;
  /**
   * Feed every evaluate() result to the schedule's observe() (the plateau schedule decays on
   * it; the others ignore it): the loss, or top-1 accuracy when the schedule's mode is 'max'.
   * Every rank sees the same global figure, so every rank decays at the same step. Default true.
   */
  observeEvaluation?: boolean;
  /**
   * Run the model with `training: false` in the step: BN uses (and keeps) its moving
   * statistics. Note this also turns dropout off. Default false.
   */
  freezeBatchNorm?: boolean;
  /** Gradient bucket size for the all-reduce. Default: the communicator's own default. */
  bucketBytes?: number;
  /** Gradient wire format for the all-reduce. Default 'fp32'. */
  wire?: WireFormat;
  /**
   * How the gradient buckets are all-reduced: 'auto' picks, per bucket, the hierarchical
   * all-reduce when the ranks span several hosts with the same number (> 1) of ranks each
   * and the bucket is at least 256 KB, else the flat ring (@tensorfleet/collective
   * chooseAlgorithm). Default 'auto'.
   */
  allReduceAlgorithm?: 'ring' | 'hierarchical' | 'auto';
  /** How to read the model output. Default: detected (softmax last layer → probabilities). */
  output?: OutputKind;
  /**
   * With BN in training mode each rank's moving statistics follow its own batches;
   * 'mean' averages them across ranks after every step (in fp32, in the gradient
   * all-reduce when the wire is fp32), which equals updating them with the ranks' mean
   * batch statistics and keeps every weight, trainable or not, bitwise identical across
   * ranks. 'none' leaves them per rank. Default 'mean'.
   */
  syncBatchNormStats?: 'mean' | 'none';
  /**
   * Images per forward/backward pass (gradient accumulation): a larger batch is cut into
   * passes of at most this many, whose gradients are summed, weighted by their share of the
   * batch, before one all-reduce and one update. Peak memory is then that of one pass (tfjs
   * keeps every activation until the backward pass ends: ResNet-50 at 224² does not fit a
   * batch of 16 in wasm's 4 GiB heap). Batch norm normalises each pass with its own
   * statistics, as in PyTorch with accumulation. Default: the whole batch in one pass.
   */
  microBatchSize?: number;
  /**
   * With several passes per step: update the BN moving statistics once per step from the
   * moments of all its passes (models' deferBatchNormStats, torchgpipe's deferred batch norm)
   * instead of once per pass. What a pipeline does; a single process with the same
   * micro-batches and this set does the same arithmetic. Default false.
   */
  deferBatchNormStats?: boolean;
}

export interface TrainBatch {
  /** NHWC (or whatever the model's input is), float32, `size` samples (× `crops`). */
  images: Float32Array;
  labels: Int32Array;
  size: number;
  /**
   * Views per sample, consecutive in `images` ([size, crops, H, W, C]); evaluate() averages
   * their softmax (AlexNet's ten-crop test). Default 1; step() accepts only 1.
   */
  crops?: number;
}

export interface StepResult {
  /** Mean softmax cross-entropy over this rank's batch. */
  loss: number;
  /** Top-1 accuracy over this rank's batch. */
  accuracy: number;
  /** Learning rate used by this step. */
  lr: number;
  /** Updates done after this one. */
  step: number;
  /** Wall time of the parts of this step, ms: forward + backward + gradient copy, all-reduce, SGD update. */
  timings: { computeMs: number; allReduceMs: number; updateMs: number };
}

export interface EvalResult {
  /** Mean cross-entropy, top-1 and top-5 over every sample of every rank. */
  loss: number;
  accuracy: number;
  top5: number;
  samples: number;
}

/** JSON part of the trainer's state; the optimizer's velocity buffers are in `optimizerBytes()`. */
export interface TrainerState {
  step: number;
  schedule: LrScheduleState;
  optimizer: { type: 'sgd'; momentum: number; slots: number };
}

/**
 * One model replica's training step. With a communicator, gradients are averaged across
 * ranks before the (deterministic) SGD update, so every rank holds bitwise identical
 * weights after each step, provided they started identical (`broadcastInitialState`).
 */
export class Trainer {
  readonly model: tf.LayersModel;
  readonly schedule: LrSchedule;
  readonly sgd: Sgd;
  private readonly comm: TrainerComm | null;
  private readonly training: boolean;
  private readonly wire: WireFormat;
  private readonly bucketBytes: number | undefined;
  private readonly outputKind: OutputKind;
  private readonly observeEvaluation: boolean;
  private readonly part: PartOptimizer;
  private readonly vars: tf.Variable[];
  private readonly deferral: BatchNormDeferral | null;
  private readonly inputShape: number[];
  private readonly numClasses: number;
  private readonly microBatchSize: number;
  private steps = 0;

  constructor(opts: TrainerOptions) {
    if (!opts.model) throw new TrainingError('INVALID_OPTIONS', 'Trainer needs a model');
    if (!opts.schedule) throw new TrainingError('INVALID_OPTIONS', 'Trainer needs an lr schedule (createLrSchedule)');
    const wire = opts.wire ?? 'fp32';
    if (!['fp32', 'fp16', 'bf16'].includes(wire)) {
      throw new TrainingError('INVALID_OPTIONS', `wire must be fp32, fp16 or bf16, got ${String(wire)}`);
    }
    if (opts.allReduceAlgorithm !== undefined && !['ring', 'hierarchical', 'auto'].includes(opts.allReduceAlgorithm)) {
      throw new TrainingError('INVALID_OPTIONS', `allReduceAlgorithm must be 'ring', 'hierarchical' or 'auto', got ${String(opts.allReduceAlgorithm)}`);
    }
    if (opts.bucketBytes !== undefined && !(Number.isInteger(opts.bucketBytes) && opts.bucketBytes > 0)) {
      throw new TrainingError('INVALID_OPTIONS', `bucketBytes must be a positive integer, got ${opts.bucketBytes}`);
    }
    if (opts.microBatchSize !== undefined && !(Number.isInteger(opts.microBatchSize) && opts.microBatchSize > 0)) {
      throw new TrainingError('INVALID_OPTIONS', `microBatchSize must be a positive integer, got ${opts.microBatchSize}`);
    }
    this.microBatchSize = opts.microBatchSize ?? Infinity;
    this.model = opts.model;
    this.schedule = opts.schedule;
    this.comm = opts.comm ?? null;
    this.training = !(opts.freezeBatchNorm ?? false);
    this.wire = wire;
    this.bucketBytes = opts.bucketBytes;
    this.outputKind = opts.output ?? detectOutputKind(opts.model);
    this.observeEvaluation = opts.observeEvaluation ?? true;
    this.part = new PartOptimizer([opts.model], {
      optimizer: opts.optimizer, comm: this.comm, wire, bucketBytes: opts.bucketBytes, allReduceAlgorithm: opts.allReduceAlgorithm, training: this.training, syncBatchNormStats: opts.syncBatchNormStats ?? 'mean',
    });
    this.vars = this.part.vars;
    this.sgd = this.part.sgd;
    this.deferral = opts.deferBatchNormStats && this.training ? deferBatchNormStats(opts.model) : null;
    const inShape = opts.model.inputs[0].shape;
    const outShape = opts.model.outputs[0].shape;
    if (inShape.slice(1).some((d) => d == null) || outShape.length !== 2 || outShape[1] == null) {
      throw new TrainingError('INVALID_OPTIONS', `the model needs a fixed input shape and [batch, classes] output, got ${JSON.stringify(inShape)} → ${JSON.stringify(outShape)}`);
    }
    this.inputShape = inShape.slice(1) as number[];
    this.numClasses = outShape[1];
  }

  /** Updates completed so far. */
  get stepsDone(): number {
    return this.steps;
  }

  /** Learning rate the next step will use. */
  get lr(): number {
    return this.schedule.lr(this.steps);
  }

  /** Forward, backward, gradient all-reduce (mean) and SGD update on one local batch. */
  async step(batch: TrainBatch): Promise<StepResult> {
    const t0 = performance.now();
    const lr = this.schedule.lr(this.steps);
    if ((batch.crops ?? 1) !== 1) throw new TrainingError('INVALID_BATCH', `step() trains on single views; got batch.crops = ${batch.crops} (multi-crop batches are for evaluate())`);
    const per = this.checkBatch(batch);
    // A step that fails leaves the moving statistics as they were.
    this.deferral?.discard();
    let lossSum = 0;
    let correctSum = 0;
    const passes = Math.ceil(batch.size / Math.min(this.microBatchSize, batch.size));
    for (let p = 0; p < passes; p++) {
      const start = Math.floor((p * batch.size) / passes);
      const end = Math.floor(((p + 1) * batch.size) / passes);
      // Each pass's tensors straight from its part of the batch arrays.
      const xs = tf.tensor(batch.images.subarray(start * per, end * per), [end - start, ...this.inputShape], 'float32');
      const ys = tf.tensor1d(batch.labels.subarray(start, end), 'int32');
      try {
        // Each pass's mean loss weighted by its share of the batch: the summed gradients
        // are then those of the batch mean.
        const [weightedLoss, correct] = await this.accumulate(xs, ys, (end - start) / batch.size, p === 0);
        lossSum += weightedLoss;
        correctSum += correct;
      } finally {
        tf.dispose([xs, ys]);
      }
    }
    this.deferral?.commit();
    const t1 = performance.now();
    const { allReduceMs, updateMs } = await this.part.reduceAndApply(lr);
    this.steps += 1;
    const timings = { computeMs: t1 - t0, allReduceMs, updateMs };
    return { loss: lossSum, accuracy: correctSum / batch.size, lr, step: this.steps, timings };
  }

  /**
   * One forward/backward pass: gradients of `share` × the pass's mean loss into gradBufs
   * (overwritten when `first`, else added). Returns that weighted loss and the pass's correct count.
   */
  private async accumulate(x: tf.Tensor, y: tf.Tensor1D, share: number, first: boolean): Promise<[number, number]> {
    // Everything the backward pass leaves behind, disposed in `finally` whatever happens.
    const held: tf.Tensor[] = [];
    try {
      let logits: tf.Tensor | undefined;
      const { value, grads } = tf.variableGrads(() => {
        const out = this.model.apply(x, { training: this.training }) as tf.Tensor;
        logits = tf.keep(out);
        const loss = tf.mean(crossEntropy(out, y, this.outputKind)) as tf.Scalar;
        return share === 1 ? loss : tf.mul(loss, share) as tf.Scalar;
      }, this.vars);
      held.push(value, ...Object.values(grads));
      if (logits) held.push(logits);
      const correct = tf.tidy(() => topKCorrect(logits as tf.Tensor, y, 1));
      held.push(correct);
      const [lossV, correctV] = await Promise.all([value.data(), correct.data()]);
      this.part.addGradTensors(this.vars.map((v) => grads[v.name] ?? null), first);
      return [(lossV as Float32Array)[0], (correctV as Float32Array)[0]];
    } finally {
      tf.dispose(held);
    }
  }

  /**
   * Loss, top-1, top-5 over `batches` with `training: false`. In data-parallel mode the
   * sums are all-reduced, so every rank returns the figure over all ranks' samples. The
   * result goes to the schedule's observe() unless `observeEvaluation` is false.
   */
  async evaluate(batches: AsyncIterable<TrainBatch> | Iterable<TrainBatch>): Promise<EvalResult> {
    let lossSum = 0;
    let top1 = 0;
    let top5 = 0;
    let n = 0;
    for await (const batch of batches) {
      const crops = batch.crops ?? 1;
      const [x, y] = this.toTensors(batch, crops);
      try {
        const sums = tf.tidy(() => {
          let out = this.model.apply(x, { training: false }) as tf.Tensor;
          if (crops > 1) {
            // Krizhevsky et al. 2012: the softmax averaged over the crops is the prediction.
            const p = this.outputKind === 'logits' ? tf.softmax(out) : out;
            out = tf.mean(tf.reshape(p, [batch.size, crops, this.numClasses]), 1);
          }
          const kind = crops > 1 ? 'probabilities' : this.outputKind;
          return tf.stack([tf.sum(crossEntropy(out, y, kind)), topKCorrect(out, y, 1), topKCorrect(out, y, 5)]);
        });
        const v = await sums.data();
        sums.dispose();
        lossSum += v[0];
        top1 += v[1];
        top5 += v[2];
        n += batch.size;
      } finally {
        tf.dispose([x, y]);
      }
    }
    if (this.comm && this.comm.worldSize > 1) {
      const all = await this.comm.allReduce(new Float32Array([lossSum, top1, top5, n]), { op: 'sum', wire: 'fp32' });
      [lossSum, top1, top5, n] = [all[0], all[1], all[2], all[3]];
    }
    if (n === 0) return { loss: NaN, accuracy: NaN, top5: NaN, samples: 0 };
    const result = { loss: lossSum / n, accuracy: top1 / n, top5: top5 / n, samples: n };
    if (this.observeEvaluation) this.schedule.observe(this.schedule.mode === 'max' ? result.accuracy : result.loss);
    return result;
  }

  /**
   * Sends `root`'s weights (trainable and not, e.g. BN moving statistics), velocity
   * buffers, step count and schedule state to every rank, so all start identical.
   */
  async broadcastInitialState(root = 0): Promise<void> {
    if (!this.comm || this.comm.worldSize <= 1) return;
    const payload = this.comm.rank === root ? this.part.packState({ step: this.steps, schedule: this.schedule.state() }) : null;
    const bytes = await this.comm.broadcast(payload, root);
    if (this.comm.rank !== root) {
      const m = this.part.unpackState(bytes) as { step: number; schedule: LrScheduleState };
      this.schedule.load(m.schedule);
      this.steps = m.step;
    }
  }

  state(): TrainerState {
    return {
      step: this.steps,
      schedule: this.schedule.state(),
      optimizer: { type: 'sgd', momentum: this.sgd.options.momentum, slots: this.sgd.slots.length },
    };
  }

  /** Every model weight, trainable and not: @tensorfleet/models' weightsToBytes. */
  weightsBytes(): Uint8Array {
    return weightsToBytes(this.model);
  }

  /** The optimizer's velocity buffers, keyed `<weight>/velocity` (models' tensorsToBytes format). */
  optimizerBytes(): Uint8Array {
    return this.part.optimizerBytes();
  }

  /** The weights and optimizer slots this trainer holds, by name (checkpoints of any plan). */
  get parts(): PartOptimizer {
    return this.part;
  }

  /** Restores what `state()`, `weightsBytes()` and `optimizerBytes()` produced (each part optional). */
  restore(parts: { state?: TrainerState; weights?: Uint8Array; optimizer?: Uint8Array }): void {
    if (parts.weights) weightsFromBytes(this.model, parts.weights);
    if (parts.optimizer) this.part.loadOptimizerBytes(parts.optimizer);
    if (parts.state) this.loadSchedule(parts.state);
  }

  /** The step count and schedule state of `state()`. */
  loadSchedule(state: TrainerState): void {
    this.schedule.load(state.schedule);
    this.steps = state.step;
  }

  /**
   * Resume from a checkpoint: velocity buffers (`optimizerBytes()`) and the JSON
   * `state()` (step count, schedule state). Model weights are restored separately.
   */
  loadState(optimizer: Uint8Array, state: unknown): void {
    this.restore({ optimizer, state: checkTrainerState(state, this.sgd.slots.length) });
  }

  dispose(): void {
    this.deferral?.end();
    this.part.dispose();
  }

  private toTensors(batch: TrainBatch, crops = 1): [tf.Tensor, tf.Tensor1D] {
    this.checkBatch(batch, crops);
    return [tf.tensor(batch.images, [batch.size * crops, ...this.inputShape], 'float32'), tf.tensor1d(batch.labels, 'int32')];
  }

  /** Throws INVALID_BATCH unless the batch fits the model; returns the values per view. */
  private checkBatch(batch: TrainBatch, crops = 1): number {
    const per = this.inputShape.reduce((a, b) => a * b, 1);
    if (!(Number.isInteger(batch.size) && batch.size > 0)) throw new TrainingError('INVALID_BATCH', `batch.size must be a positive integer, got ${batch.size}`);
    if (!(Number.isInteger(crops) && crops > 0)) throw new TrainingError('INVALID_BATCH', `batch.crops must be a positive integer, got ${crops}`);
    if (batch.images.length !== batch.size * crops * per) {
      throw new TrainingError('INVALID_BATCH', `batch.images holds ${batch.images.length} values; ${batch.size} samples${crops > 1 ? ` × ${crops} crops` : ''} of [${this.inputShape}] need ${batch.size * crops * per}`);
    }
    if (batch.labels.length !== batch.size) throw new TrainingError('INVALID_BATCH', `batch.labels holds ${batch.labels.length} labels for ${batch.size} samples`);
    for (const l of batch.labels) {
      if (!(l >= 0 && l < this.numClasses)) throw new TrainingError('INVALID_BATCH', `label ${l} is outside [0, ${this.numClasses}): does the dataset match the model's numClasses?`);
    }
    return per;
  }
}

/**
 * A checkpoint's "trainer" field, checked against an optimizer with `slots` velocity buffers
 * (when given: a run on another plan holds another number of them, and checks them by name).
 */
export function checkTrainerState(state: unknown, slots?: number): TrainerState {
  const s = state as Partial<TrainerState> | null;
  if (!s || typeof s !== 'object' || !Number.isInteger(s.step) || !s.schedule || typeof s.schedule !== 'object') {
    throw new TrainingError('STATE_MISMATCH', 'trainer state must be what Trainer.state() returned ({ step, schedule, optimizer }); check state.json\'s "trainer" field');
  }
  if (slots !== undefined && s.optimizer && s.optimizer.slots !== slots) {
    throw new TrainingError('STATE_MISMATCH', `checkpoint has ${s.optimizer.slots} velocity buffers, this optimizer ${slots}: was momentum changed between runs?`);
  }
  return s as TrainerState;
}
