import {
  ALEXNET_PAPER_SECTIONS, alexnetColumnOf, alexnetColumnOwner, createModelPart, recordForward, tf,
  type ModelPart, type RecordedForward,
} from '@tensorfleet/models';
import type { Communicator } from '@tensorfleet/collective';
import { TrainingError } from '../errors';
import { crossEntropy, topKCorrect } from '../trainer/metrics';
import { PartOptimizer } from '../trainer/part-optimizer';
import type { EvalResult, TrainBatch } from '../trainer/trainer';
import type { ParallelPlan, RankPlace } from './plan';
import { PartTrainer, type PartTrainerOptions } from './part-trainer';
import { bytesOf, floats, MsgKind, tagOf, type PlanStepResult } from './plan-trainer';

export interface ColumnTrainerOptions extends PartTrainerOptions {
  /** 'alexnet_paper' (the model whose layers are named col0_* / col1_*). */
  model: string;
}

/**
 * One column of AlexNet's two-GPU split (Krizhevsky et al. 2012, §3.2): this worker holds the
 * col{c}_* layers, as the paper held one column per GPU, and the columns exchange activations
 * only where the paper's did (ALEXNET_PAPER_EXCHANGES: conv3's, fc6's, fc7's and fc8's inputs),
 * each column sending its half and receiving the other's. Backwards, the gradient of an
 * exchanged activation has a part from each column's layers that read it: each column sends
 * the other the part for the other's half, and adds what it receives to its own.
 *
 * fc8 (4096 → classes, 6.7% of the weights at 1000 classes, 0.6% of the multiply-adds) is held
 * whole by both columns: each computes the same logits and loss from the same exchanged
 * input, so the loss needs no further exchange and fc8's input gradient none at all (each
 * column keeps its own half). Both copies get the same gradients and stay bitwise equal; one
 * column writes fc8 into checkpoints. The alternatives cost more: fc8 on one column leaves the
 * other waiting for the loss and needs the gradient sent back; fc8 split by classes needs the
 * logits exchanged for the softmax and splits a weight across checkpoint parts.
 */
export class ColumnTrainer extends PartTrainer {
  readonly plan: ParallelPlan;
  readonly place: RankPlace;
  readonly part: PartOptimizer;
  /** One part per section, in order: the spans between exchanges. */
  readonly segments: ModelPart[];
  private readonly columns: Communicator;
  private readonly column: 0 | 1;
  private readonly other: 0 | 1;
  private readonly training: boolean;
  private readonly microSize: number;
  private readonly inShape: number[];
  private readonly numClasses: number;
  /** Per segment, the index in part.vars of each of its trainable weights. */
  private readonly varIndex: number[][];

  constructor(private readonly o: ColumnTrainerOptions) {
    super(o.schedule, o.comms);
    this.plan = o.plan;
    this.place = o.place;
    if (o.plan.stages !== 2 || !o.comms.stages) throw new TrainingError('INVALID_OPTIONS', 'the column split runs on exactly 2 workers per replica, with their group');
    if (o.batchSize % o.plan.microBatches !== 0) {
      throw new TrainingError('INVALID_OPTIONS', `parallelism.modelParallel.microBatches (${o.plan.microBatches}) must divide batchSize (${o.batchSize})`);
    }
    this.column = o.place.stage as 0 | 1;
    this.other = (1 - this.column) as 0 | 1;
    this.columns = o.comms.stages;
    this.training = !(o.freezeBatchNorm ?? false);
    this.microSize = o.batchSize / o.plan.microBatches;
    this.segments = ALEXNET_PAPER_SECTIONS.map((s) => createModelPart(o.model, o.modelOptions, alexnetColumnOwner(this.column, s), `col${this.column}_${s}`));
    this.segments.forEach((seg, k) => {
      const ok = k === 0 ? seg.inputs.length === 1 : seg.inputs.length === 2;
      if (!ok || seg.outputs.length !== 1) throw new TrainingError('INVALID_OPTIONS', `model ${o.model} does not split into AlexNet's columns at section ${ALEXNET_PAPER_SECTIONS[k]}: use alexnet_paper`);
    });
    this.inShape = this.segments[0].inputs[0].shape;
    this.numClasses = this.segments[this.segments.length - 1].outputs[0].shape[0];
    this.part = new PartOptimizer(this.segments.map((s) => s.model), {
      optimizer: o.optimizer, comm: o.comms.replicas, wire: o.wire ?? 'fp32', bucketBytes: o.bucketBytes, training: this.training, syncBatchNormStats: 'mean',
    });
    const index = new Map(this.part.vars.map((v, i) => [v, i]));
    this.varIndex = this.segments.map((s) => s.model.trainableWeights.map((w) => index.get(w.read() as tf.Variable)!));
  }

  /** Which input of a two-input segment is this column's half (inputs are in column order). */
  private ownInput(seg: ModelPart): number {
    return seg.inputs.findIndex((p) => alexnetColumnOf(p.name) === this.column);
  }

  /**
   * Forward through every segment for `x`, exchanging halves with the other column; the last
   * segment's output is the logits. Training passes record each segment for the backward.
   */
  private async forward(x: tf.Tensor, mb: number, record: boolean, io: Io): Promise<{ recs: RecordedForward[]; ins: tf.Tensor[][]; logits: tf.Tensor }> {
    const recs: RecordedForward[] = [];
    const ins: tf.Tensor[][] = [];
    let own: tf.Tensor = x;
    let logits!: tf.Tensor;
    for (let k = 0; k < this.segments.length; k++) {
      const seg = this.segments[k];
      let inputs: tf.Tensor[];
      if (k === 0) inputs = [x];
      else {
        const kind = record ? MsgKind.Activation : MsgKind.EvalActivation;
        io.send(tagOf(kind, mb, k), (await own.data()) as Float32Array);
        const theirs = tf.tensor(floats(await io.recv(tagOf(kind, mb, k))), own.shape, 'float32');
        inputs = this.ownInput(seg) === 0 ? [own, theirs] : [theirs, own];
      }
      ins.push(inputs);
      const apply = () => seg.model.apply(inputs.length === 1 ? inputs[0] : inputs, { training: record && this.training }) as tf.Tensor;
      let out: tf.Tensor;
      if (record) {
        const rec = recordForward(apply);
        recs.push(rec);
        out = rec.outputs[0];
      } else {
        out = tf.tidy(apply);
        if (k > 0) tf.dispose(inputs.filter((t) => t !== x));
      }
      if (k === this.segments.length - 1) logits = out;
      own = out;
    }
    return { recs, ins, logits };
  }

  async step(batch: TrainBatch | null): Promise<PlanStepResult> {
    const t0 = performance.now();
    const lr = this.schedule.lr(this.steps);
    this.checkBatch(batch);
    const b = batch!;
    const m = this.plan.microBatches;
    const per = this.inShape.reduce((a, c) => a * c, 1);
    const io = this.io(m);
    const losses = new Array<number>(m).fill(0);
    const hits = new Array<number>(m).fill(0);
    // Every micro-batch runs as its own task: while one waits at an exchange for the other
    // column's half, the next computes. Each segment's weight gradients are still added in
    // micro-batch order (the sum a single process accumulating them makes).
    const added = this.segments.map(() => Array.from({ length: m }, () => deferred()));
    // With nothing to reduce across replicas, a segment's weights are updated as soon as the
    // last micro-batch's gradients reach them: fc7's and fc6's while the other column's
    // gradient is still on its way, instead of every weight after the last exchange. A step
    // that fails later leaves some segments updated: nothing reads them, since a column run
    // resumes only from its checkpoint (StepCommit holds no model-parallel state).
    const eachSegment = this.part.updatesEachWeight;
    let updateMs = 0;
    const microBatch = async (mb: number) => {
      const x = tf.tensor(b.images.subarray(mb * this.microSize * per, (mb + 1) * this.microSize * per), [this.microSize, ...this.inShape], 'float32');
      const y = tf.tensor1d(b.labels.subarray(mb * this.microSize, (mb + 1) * this.microSize), 'int32');
      const addInOrder = async (k: number, grads: (tf.Tensor | null)[]) => {
        if (mb > 0) await added[k][mb - 1].promise;
        this.addSegmentGrads(k, grads, mb === 0);
        if (eachSegment && mb === m - 1) {
          const tu = performance.now();
          this.part.applyEach(this.varIndex[k], lr);
          updateMs += performance.now() - tu;
        }
        added[k][mb].resolve();
      };
      const { recs, ins, logits } = await this.forward(x, mb, true, io);
      // The loss from the logits: recorded on top of the last segment (a recording of its own).
      const head = recordForward(() => tf.mul(tf.mean(crossEntropy(logits, y, 'logits')), 1 / m));
      const hit = tf.tidy(() => topKCorrect(logits, y, 1));
      losses[mb] = (await head.outputs[0].data())[0];
      hits[mb] = (await hit.data())[0];
      hit.dispose();
      const one = tf.scalar(1);
      let [dOut] = head.backward([one], [logits]);
      one.dispose();
      // Backwards through the segments, exchanging the halves' gradients.
      for (let k = this.segments.length - 1; k >= 0; k--) {
        const inputs = ins[k];
        const weights = this.varIndex[k].map((i) => this.part.vars[i]);
        if (k > 0 && k < this.segments.length - 1) {
          // An exchange below: the gradient of the other column's half goes out before this
          // segment's weight gradients are computed, which then overlap the exchange.
          const split = recs[k].backwardSplit([dOut], inputs, weights);
          let varGrads: (tf.Tensor | null)[];
          let gOwn: tf.Tensor;
          try {
            const mine = this.ownInput(this.segments[k]);
            const gTheirs = split.inputs[1 - mine]!;
            gOwn = split.inputs[mine]!;
            io.send(tagOf(MsgKind.Gradient, mb, k), (await gTheirs.data()) as Float32Array);
            await new Promise<void>((resolve) => setImmediate(resolve));
            varGrads = split.weights();
            gTheirs.dispose();
          } catch (e) {
            split.release();
            throw e;
          }
          dOut!.dispose();
          // Every use of this segment's weights by this micro-batch is over: its gradients (and
          // at the last micro-batch its update) go in before the wait for the other column's.
          await addInOrder(k, varGrads);
          const back = tf.tensor(floats(await io.recv(tagOf(MsgKind.Gradient, mb, k))), gOwn.shape, 'float32');
          dOut = tf.add(gOwn, back);
          tf.dispose([gOwn, back]);
          tf.dispose(inputs.filter((t) => t !== x));
          continue;
        }
        const sources = [...(k > 0 ? inputs : []), ...weights];
        const grads = recs[k].backward([dOut], sources);
        dOut?.dispose();
        dOut = null;
        if (k > 0) {
          // fc8 (the last segment) is replicated: the other column computed the same gradient
          // for its own half, so nothing is exchanged.
          const mine = this.ownInput(this.segments[k]);
          dOut = grads[mine];
          grads[1 - mine]?.dispose();
          tf.dispose(inputs.filter((t) => t !== x));
        }
        await addInOrder(k, grads.slice(k > 0 ? 2 : 0));
      }
      dOut?.dispose();
      tf.dispose([x, y]);
    };
    await Promise.all(Array.from({ length: m }, (_, mb) => microBatch(mb).then(io.taskDone, (e: unknown) => {
      // the later micro-batches waiting on this one's gradients fail with it instead of hanging
      for (const seg of added) seg[mb].reject(e);
      io.taskDone();
      throw e;
    })));
    const lossSum = losses.reduce((a, v) => a + v, 0);
    const correct = hits.reduce((a, v) => a + v, 0);
    await io.flush();
    const t1 = performance.now();
    let allReduceMs = 0;
    if (!eachSegment) ({ allReduceMs, updateMs } = await this.part.reduceAndApply(lr));
    this.steps += 1;
    const reports = this.column === 0;
    return {
      loss: reports ? lossSum : 0,
      accuracy: reports ? correct / b.size : 0,
      samples: reports ? b.size : 0,
      lr,
      step: this.steps,
      timings: { computeMs: t1 - t0 - io.waitMs - (eachSegment ? updateMs : 0), waitMs: io.waitMs, allReduceMs, updateMs, sentBytes: io.sentBytes, inFlight: m },
    };
  }

  /** Adds segment k's weight gradients into the part's buffers (first pass of a step: overwrite). */
  private addSegmentGrads(k: number, grads: (tf.Tensor | null)[], first: boolean): void {
    this.varIndex[k].forEach((vi, j) => this.part.addGradTensor(vi, grads[j], first));
  }

  async evaluate(batches: AsyncIterable<TrainBatch> | Iterable<TrainBatch> | null): Promise<EvalResult> {
    if (!batches) throw new TrainingError('INVALID_OPTIONS', 'both columns evaluate the held-out batches: pass them');
    const sums = [0, 0, 0, 0];
    const io = this.io();
    for await (const b of batches) {
      const crops = b.crops ?? 1;
      const x = tf.tensor(b.images, [b.size * crops, ...this.inShape], 'float32');
      const { logits } = await this.forward(x, 0, false, io);
      const y = tf.tensor1d(b.labels, 'int32');
      const v = tf.tidy(() => {
        let out = logits;
        if (crops > 1) out = tf.mean(tf.reshape(tf.softmax(out), [b.size, crops, this.numClasses]), 1);
        const kind = crops > 1 ? 'probabilities' : 'logits';
        return tf.stack([tf.sum(crossEntropy(out, y, kind)), topKCorrect(out, y, 1), topKCorrect(out, y, 5)]).dataSync();
      });
      tf.dispose([x, y, logits]);
      if (this.column === 0) {
        sums[0] += v[0];
        sums[1] += v[1];
        sums[2] += v[2];
        sums[3] += b.size;
      }
    }
    await io.flush();
    return this.globalEvaluation(sums);
  }

  /** Column 1 leaves fc8 to column 0, which holds the same weights. */
  override checkpointTensors() {
    const keep = (name: string) => this.column === 0 || alexnetColumnOf(name.split('/')[0]) === this.column;
    const filter = (r: Record<string, tf.Tensor>) => Object.fromEntries(Object.entries(r).filter(([n]) => keep(n)));
    return { weights: filter(this.part.weightTensors()), optimizer: filter(this.part.optimizerTensors()) };
  }

  dispose(): void {
    this.part.dispose();
    for (const s of this.segments) s.model.dispose();
  }

  /**
   * Sends to and receives from the other column, counting bytes and idle time: the time when
   * every live micro-batch task waits for the other column (one waiting while another computes
   * is not idle).
   */
  private io(tasks = 1): Io {
    const sends: Promise<void>[] = [];
    let live = tasks;
    let waiting = 0;
    let idleSince = -1;
    const update = () => {
      const idle = live > 0 && waiting === live;
      if (idle && idleSince < 0) idleSince = performance.now();
      else if (!idle && idleSince >= 0) {
        io.waitMs += performance.now() - idleSince;
        idleSince = -1;
      }
    };
    const io: Io = {
      sentBytes: 0,
      waitMs: 0,
      send: (tag, data) => {
        io.sentBytes += data.byteLength;
        sends.push(this.columns.send(this.other, tag, bytesOf(data)));
      },
      recv: async (tag) => {
        waiting += 1;
        update();
        try {
          return await this.columns.recv(this.other, tag);
        } finally {
          waiting -= 1;
          update();
        }
      },
      taskDone: () => {
        live -= 1;
        update();
      },
      flush: async () => {
        await Promise.all(sends);
      },
    };
    return io;
  }

  private checkBatch(batch: TrainBatch | null): void {
    const per = this.inShape.reduce((a, b) => a * b, 1);
    if (!batch || batch.size !== this.o.batchSize || (batch.crops ?? 1) !== 1 || batch.images.length !== batch.size * per || batch.labels.length !== batch.size) {
      throw new TrainingError('INVALID_BATCH', `a column step takes ${this.o.batchSize} single-view samples of [${this.inShape}]; got ${batch ? `${batch.size} samples, ${batch.images.length} values` : 'none'}`);
    }
    for (const l of batch.labels) {
      if (!(l >= 0 && l < this.numClasses)) throw new TrainingError('INVALID_BATCH', `label ${l} is outside [0, ${this.numClasses}): does the dataset match the model's numClasses?`);
    }
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => { resolve = res; reject = rej; });
  promise.catch(() => undefined); // a rejection nobody awaits is not unhandled
  return { promise, resolve, reject };
}

interface Io {
  sentBytes: number;
  waitMs: number;
  send(tag: number, data: Float32Array): void;
  recv(tag: number): Promise<Uint8Array>;
  /** A micro-batch task has finished (its waits no longer count towards idle time). */
  taskDone(): void;
  flush(): Promise<void>;
}
