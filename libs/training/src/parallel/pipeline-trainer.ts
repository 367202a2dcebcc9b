import {
  createModelPart, deferBatchNormStats, recordForward, sectionsOwner, tf,
  type BatchNormDeferral, type ModelPart, type RecordedForward,
} from '@tensorfleet/models';
import type { Communicator } from '@tensorfleet/collective';
import { TrainingError } from '../errors';
import { crossEntropy, topKCorrect } from '../trainer/metrics';
import { PartOptimizer } from '../trainer/part-optimizer';
import type { EvalResult, TrainBatch } from '../trainer/trainer';
import type { ParallelPlan, RankPlace } from './plan';
import { PartTrainer, type PartTrainerOptions } from './part-trainer';
import { bytesOf, floats, ints, MsgKind, tagOf, type PlanStepResult } from './plan-trainer';
import { peakInFlight, pipelineOps } from './schedule';

export interface PipelineTrainerOptions extends PartTrainerOptions {
  /** The sections of every stage (pipelineStages). */
  stageSections: string[][];
  /** Whether the logits are a softmax's output (the zoo's are logits). Default logits. */
  output?: 'logits' | 'probabilities';
}

/**
 * One stage of a pipeline replica (GPipe, Huang et al. 2019; or 1F1B). It holds only its
 * sections' weights and runs its micro-batches' forward and backward passes in the plan's
 * fixed order: activations go to the next stage, their gradients come back, each a tagged
 * point-to-point message on the replica's stage group. Its gradients are summed over the
 * micro-batches, averaged over the stage's replicas, then it takes its SGD step, while other
 * stages may still compute. Batch norm normalises each micro-batch and updates its moving
 * statistics once per step from all of them (deferred batch norm).
 */
export class PipelineStageTrainer extends PartTrainer {
  readonly plan: ParallelPlan;
  readonly place: RankPlace;
  readonly part: PartOptimizer;
  readonly stage: ModelPart;
  private readonly stagesComm: Communicator | null;
  private readonly deferral: BatchNormDeferral | null;
  private readonly training: boolean;
  private readonly first: boolean;
  private readonly last: boolean;
  private readonly microSize: number;
  private readonly inShape: number[];
  private readonly outShape: number[];
  private readonly numClasses: number;
  private readonly kind: 'logits' | 'probabilities';

  constructor(private readonly o: PipelineTrainerOptions) {
    super(o.schedule, o.comms);
    this.plan = o.plan;
    this.place = o.place;
    const S = o.plan.stages;
    if (o.stageSections.length !== S) throw new TrainingError('INVALID_OPTIONS', `${S} stages need ${S} section lists, got ${o.stageSections.length}`);
    if (o.batchSize % o.plan.microBatches !== 0) {
      throw new TrainingError('INVALID_OPTIONS', `parallelism.modelParallel.microBatches (${o.plan.microBatches}) must divide batchSize (${o.batchSize})`);
    }
    if (S > 1 && !o.comms.stages) throw new TrainingError('INVALID_OPTIONS', 'a pipeline of several stages needs its stage group');
    this.first = o.place.stage === 0;
    this.last = o.place.stage === S - 1;
    this.microSize = o.batchSize / o.plan.microBatches;
    this.stage = createModelPart(o.model, o.modelOptions, sectionsOwner(o.stageSections[o.place.stage]), `stage${o.place.stage}`);
    this.inShape = this.stage.inputs[0].shape;
    this.outShape = this.stage.outputs[this.stage.outputs.length - 1].shape;
    if (this.stage.inputs.length !== 1 || this.stage.outputs.length !== 1) {
      throw new TrainingError('INVALID_OPTIONS', `stage ${o.place.stage} (${o.stageSections[o.place.stage].join(', ')}) reads ${this.stage.inputs.length} and produces ${this.stage.outputs.length} tensors; a pipeline stage takes one of each: cut at block boundaries`);
    }
    this.numClasses = this.last ? this.outShape[0] : 0;
    this.kind = o.output ?? 'logits';
    this.training = !(o.freezeBatchNorm ?? false);
    this.stagesComm = o.comms.stages;
    this.part = new PartOptimizer([this.stage.model], {
      optimizer: o.optimizer, comm: o.comms.replicas, wire: o.wire ?? 'fp32', bucketBytes: o.bucketBytes, training: this.training, syncBatchNormStats: 'mean',
    });
    this.deferral = this.training ? deferBatchNormStats(this.stage.model) : null;
  }

  async step(batch: TrainBatch | null): Promise<PlanStepResult> {
    const t0 = performance.now();
    const lr = this.schedule.lr(this.steps);
    const { microBatches: m, stages: S } = this.plan;
    const s = this.place.stage;
    const comm = this.stagesComm;
    const per = this.inShape.reduce((a, b) => a * b, 1);
    if (this.first) this.checkBatch(batch);
    // The labels go from the first stage straight to the last, once per step.
    let labels: Int32Array | null = this.first ? batch!.labels : null;
    const sends: Promise<void>[] = [];
    let sentBytes = 0;
    // A send is queued on a promise chain: yield to the event loop once so that the frame
    // reaches ZeroMQ now, not after the next micro-batch's (synchronous) kernels.
    const send = async (to: number, tag: number, data: Float32Array | Int32Array) => {
      sentBytes += data.byteLength;
      sends.push(comm!.send(to, tag, bytesOf(data)));
      await new Promise<void>((resolve) => setImmediate(resolve));
    };
    let waitMs = 0;
    const recv = async (from: number, tag: number) => {
      const w = performance.now();
      const bytes = await comm!.recv(from, tag);
      waitMs += performance.now() - w;
      return bytes;
    };
    if (this.first && !this.last) await send(S - 1, tagOf(MsgKind.Labels, 0), labels!);
    const pending: { rec: RecordedForward; x: tf.Tensor }[] = [];
    let lossSum = 0;
    let correct = 0;
    const ops = pipelineOps(this.plan.schedule, S, m, s);
    this.deferral?.discard();
    try {
      for (const op of ops) {
        const mb = op.mb;
        if (op.kind === 'F') {
          const x = this.first
            ? tf.tensor(batch!.images.subarray(mb * this.microSize * per, (mb + 1) * this.microSize * per), [this.microSize, ...this.inShape], 'float32')
            : tf.tensor(floats(await recv(s - 1, tagOf(MsgKind.Activation, mb))), [this.microSize, ...this.inShape], 'float32');
          if (this.last) {
            if (!labels) labels = ints(await recv(0, tagOf(MsgKind.Labels, 0))).slice();
            if (mb === 0) this.checkLabels(labels);
            const y = tf.tensor1d(labels.subarray(mb * this.microSize, (mb + 1) * this.microSize), 'int32');
            const rec = recordForward(() => {
              const out = this.stage.model.apply(x, { training: this.training }) as tf.Tensor;
              // each micro-batch's mean loss weighted by its share: the summed gradients are the batch mean's
              return [tf.mul(tf.mean(crossEntropy(out, y, this.kind)), 1 / m), out];
            });
            const hit = tf.tidy(() => topKCorrect(rec.outputs[1], y, 1));
            lossSum += (await rec.outputs[0].data())[0];
            correct += (await hit.data())[0];
            tf.dispose([hit, y]);
            pending[mb] = { rec, x };
          } else {
            const rec = recordForward(() => this.stage.model.apply(x, { training: this.training }) as tf.Tensor);
            await send(s + 1, tagOf(MsgKind.Activation, mb), (await rec.outputs[0].data()) as Float32Array);
            pending[mb] = { rec, x };
          }
        } else {
          const { rec, x } = pending[mb];
          delete pending[mb];
          const dy = this.last
            ? [tf.scalar(1), null]
            : [tf.tensor(floats(await recv(s + 1, tagOf(MsgKind.Gradient, mb))), [this.microSize, ...this.outShape], 'float32')];
          let grads: (tf.Tensor | null)[];
          if (this.first) grads = rec.backward(dy, this.part.vars);
          else {
            // The input's gradient first, sent upstream before this stage's weight gradients:
            // the stage before waits only for the input half of this backward pass.
            const split = rec.backwardSplit(dy, [x], this.part.vars);
            try {
              const dx = split.inputs[0]!;
              await send(s - 1, tagOf(MsgKind.Gradient, mb), (await dx.data()) as Float32Array);
              grads = split.weights();
              dx.dispose();
            } catch (e) {
              split.release();
              throw e;
            }
          }
          tf.dispose([x, ...dy.filter((d): d is tf.Tensor => d !== null)]);
          this.part.addGradTensors(grads, mb === 0);
        }
      }
      await Promise.all(sends);
    } catch (e) {
      for (const p of pending) if (p) { p.rec.release(); p.x.dispose(); }
      this.deferral?.discard();
      throw e;
    }
    this.deferral?.commit();
    const t1 = performance.now();
    const { allReduceMs, updateMs } = await this.part.reduceAndApply(lr);
    this.steps += 1;
    const samples = this.last ? m * this.microSize : 0;
    return {
      loss: this.last ? lossSum : 0,
      accuracy: this.last ? correct / samples : 0,
      samples,
      lr,
      step: this.steps,
      timings: { computeMs: t1 - t0 - waitMs, waitMs, allReduceMs, updateMs, sentBytes, inFlight: peakInFlight(ops) },
    };
  }

  async evaluate(batches: AsyncIterable<TrainBatch> | Iterable<TrainBatch> | null): Promise<EvalResult> {
    const S = this.plan.stages;
    const s = this.place.stage;
    const comm = this.stagesComm;
    const sums = [0, 0, 0, 0]; // loss, top-1, top-5, samples
    const score = (out: tf.Tensor, labels: Int32Array, crops: number) => {
      const y = tf.tensor1d(labels, 'int32');
      const v = tf.tidy(() => {
        let o = out;
        if (crops > 1) {
          const p = this.kind === 'logits' ? tf.softmax(o) : o;
          o = tf.mean(tf.reshape(p, [labels.length, crops, this.numClasses]), 1);
        }
        const kind = crops > 1 ? 'probabilities' : this.kind;
        return tf.stack([tf.sum(crossEntropy(o, y, kind)), topKCorrect(o, y, 1), topKCorrect(o, y, 5)]).dataSync();
      });
      y.dispose();
      sums[0] += v[0];
      sums[1] += v[1];
      sums[2] += v[2];
      sums[3] += labels.length;
    };
    if (this.first) {
      if (!batches) throw new TrainingError('INVALID_OPTIONS', 'the first stage of a pipeline evaluates the held-out batches: pass them');
      for await (const b of batches) {
        const crops = b.crops ?? 1;
        const out = tf.tidy(() => this.stage.model.apply(tf.tensor(b.images, [b.size * crops, ...this.inShape], 'float32'), { training: false }) as tf.Tensor);
        if (this.last) score(out, b.labels, crops);
        else {
          await comm!.send(s + 1, tagOf(MsgKind.EvalActivation, 0), out.dataSync() as Float32Array);
          await comm!.send(S - 1, tagOf(MsgKind.EvalLabels, 0), bytesOf(Int32Array.from([crops, ...b.labels])));
        }
        out.dispose();
      }
      // an empty activation: no more batches
      if (!this.last) await comm!.send(s + 1, tagOf(MsgKind.EvalActivation, 0), new Float32Array(0));
    } else {
      const inPer = this.inShape.reduce((a, b) => a * b, 1);
      for (;;) {
        const act = floats(await comm!.recv(s - 1, tagOf(MsgKind.EvalActivation, 0)));
        if (act.length === 0) {
          if (!this.last) await comm!.send(s + 1, tagOf(MsgKind.EvalActivation, 0), new Float32Array(0));
          break;
        }
        const out = tf.tidy(() => this.stage.model.apply(tf.tensor(act, [act.length / inPer, ...this.inShape], 'float32'), { training: false }) as tf.Tensor);
        if (this.last) {
          const meta = ints(await comm!.recv(0, tagOf(MsgKind.EvalLabels, 0)));
          score(out, meta.slice(1), meta[0]);
        } else {
          await comm!.send(s + 1, tagOf(MsgKind.EvalActivation, 0), out.dataSync() as Float32Array);
        }
        out.dispose();
      }
    }
    return this.globalEvaluation(sums);
  }

  dispose(): void {
    this.deferral?.end();
    this.part.dispose();
    this.stage.model.dispose();
  }

  private checkLabels(labels: Int32Array): void {
    if (labels.length !== this.o.batchSize) throw new TrainingError('INVALID_BATCH', `the last stage got ${labels.length} labels for a batch of ${this.o.batchSize}`);
    for (const l of labels) {
      if (!(l >= 0 && l < this.numClasses)) throw new TrainingError('INVALID_BATCH', `label ${l} is outside [0, ${this.numClasses}): does the dataset match the model's numClasses?`);
    }
  }

  private checkBatch(batch: TrainBatch | null): void {
    if (!batch) throw new TrainingError('INVALID_BATCH', `stage 0 of a pipeline needs the replica's batch; got none`);
    const per = this.inShape.reduce((a, b) => a * b, 1);
    if (batch.size !== this.o.batchSize || (batch.crops ?? 1) !== 1 || batch.images.length !== batch.size * per || batch.labels.length !== batch.size) {
      throw new TrainingError('INVALID_BATCH', `a pipeline step takes ${this.o.batchSize} single-view samples of [${this.inShape}] (${this.plan.microBatches} micro-batches of ${this.microSize}); got ${batch.size} samples, ${batch.images.length} values, ${batch.labels.length} labels`);
    }
  }
}
