import type { CreateModelOptions, NamedArray, tf } from '@tensorfleet/models';
import type { SgdOptions } from '../optim/sgd';
import type { LrSchedule } from '../schedule/lr-schedule';
import type { WireFormat } from '../trainer/comm';
import type { PartOptimizer } from '../trainer/part-optimizer';
import type { EvalResult, TrainBatch, TrainerState } from '../trainer/trainer';
import type { ParallelPlan, RankPlace } from './plan';
import type { PlanComms, PlanStepResult, PlanTrainer } from './plan-trainer';

/** What every part trainer is built from. */
export interface PartTrainerOptions {
  model: string;
  modelOptions: CreateModelOptions;
  plan: ParallelPlan;
  place: RankPlace;
  comms: PlanComms;
  optimizer: SgdOptions;
  schedule: LrSchedule;
  /** Per replica: the batch each step takes (cut into plan.microBatches). */
  batchSize: number;
  freezeBatchNorm?: boolean;
  wire?: WireFormat;
  bucketBytes?: number;
}

/**
 * What the trainers of a model part (a pipeline stage, an AlexNet column) share: the step
 * count and schedule, replica 0's state to the other replicas, checkpoint state and resume,
 * and the global held-out figures. A subclass does the forward and backward passes.
 */
export abstract class PartTrainer implements PlanTrainer {
  abstract readonly plan: ParallelPlan;
  abstract readonly place: RankPlace;
  abstract readonly part: PartOptimizer;
  protected steps = 0;

  protected constructor(
    protected readonly schedule: LrSchedule,
    protected readonly comms: PlanComms,
  ) {}

  abstract step(batch: TrainBatch | null): Promise<PlanStepResult>;
  abstract evaluate(batches: AsyncIterable<TrainBatch> | Iterable<TrainBatch> | null): Promise<EvalResult>;
  abstract dispose(): void;

  get stepsDone(): number {
    return this.steps;
  }

  get lr(): number {
    return this.schedule.lr(this.steps);
  }

  async broadcastInitialState(): Promise<void> {
    const comm = this.comms.replicas;
    if (!comm || comm.worldSize <= 1) return;
    const payload = comm.rank === 0 ? this.part.packState({ step: this.steps, schedule: this.schedule.state() }) : null;
    const bytes = await comm.broadcast(payload, 0);
    if (comm.rank !== 0) this.loadMeta(this.part.unpackState(bytes) as unknown as TrainerState);
  }

  state(): TrainerState {
    return { step: this.steps, schedule: this.schedule.state(), optimizer: { type: 'sgd', momentum: this.part.sgd.options.momentum, slots: this.part.sgd.slots.length } };
  }

  load(weights: Record<string, NamedArray>, optimizer: Record<string, NamedArray>, state: TrainerState): void {
    this.part.loadWeights(weights);
    if (this.part.sgd.slots.length) this.part.loadOptimizer(optimizer);
    this.loadMeta(state);
  }

  /** Replica 0 of each part writes it (the other replicas hold the same weights). */
  writesCheckpoint(): boolean {
    return this.place.replica === 0;
  }

  checkpointTensors(): { weights: Record<string, tf.Tensor>; optimizer: Record<string, tf.Tensor> } {
    return { weights: this.part.weightTensors(), optimizer: this.part.optimizerTensors() };
  }

  /**
   * The held-out figures over every rank from this rank's sums [loss, top-1, top-5, samples]
   * (ranks that score nothing pass zeros); they also feed a plateau schedule.
   */
  protected async globalEvaluation(sums: number[]): Promise<EvalResult> {
    const world = this.comms.world;
    const all = world ? await world.allReduce(Float32Array.from(sums), { op: 'sum', wire: 'fp32' }) : Float32Array.from(sums);
    const n = all[3];
    if (n === 0) return { loss: NaN, accuracy: NaN, top5: NaN, samples: 0 };
    const result = { loss: all[0] / n, accuracy: all[1] / n, top5: all[2] / n, samples: n };
    this.schedule.observe(this.schedule.mode === 'max' ? result.accuracy : result.loss);
    return result;
  }

  private loadMeta(state: Pick<TrainerState, 'step' | 'schedule'>): void {
    this.schedule.load(state.schedule);
    this.steps = state.step;
  }
}
