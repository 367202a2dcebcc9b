import type { NamedArray } from '@tensorfleet/models';
import { Trainer, type EvalResult, type TrainBatch, type TrainerState } from '../trainer/trainer';
import type { PartOptimizer } from '../trainer/part-optimizer';
import type { ParallelPlan, RankPlace } from './plan';
import type { PlanStepResult, PlanTrainer } from './plan-trainer';

/** Plain data parallelism as a plan: every rank a whole replica, the Trainer as it always was. */
export class DataParallelTrainer implements PlanTrainer {
  constructor(
    readonly plan: ParallelPlan,
    readonly place: RankPlace,
    readonly trainer: Trainer,
  ) {}

  get part(): PartOptimizer {
    return this.trainer.parts;
  }

  get stepsDone(): number {
    return this.trainer.stepsDone;
  }

  get lr(): number {
    return this.trainer.lr;
  }

  async step(batch: TrainBatch | null): Promise<PlanStepResult> {
    if (!batch) throw new Error('every data-parallel rank trains on a batch of its own');
    const r = await this.trainer.step(batch);
    return {
      loss: r.loss, accuracy: r.accuracy, samples: batch.size, lr: r.lr, step: r.step,
      timings: { computeMs: r.timings.computeMs, waitMs: 0, allReduceMs: r.timings.allReduceMs, updateMs: r.timings.updateMs, sentBytes: 0, inFlight: 1 },
    };
  }

  evaluate(batches: AsyncIterable<TrainBatch> | Iterable<TrainBatch> | null): Promise<EvalResult> {
    return this.trainer.evaluate(batches ?? []);
  }

  broadcastInitialState(): Promise<void> {
    return this.trainer.broadcastInitialState(0);
  }

  state(): TrainerState {
    return this.trainer.state();
  }

  load(weights: Record<string, NamedArray>, optimizer: Record<string, NamedArray>, state: TrainerState): void {
    this.part.loadWeights(weights);
    if (this.part.sgd.slots.length) this.part.loadOptimizer(optimizer);
    this.trainer.loadSchedule(state);
  }

  writesCheckpoint(): boolean {
    return this.place.rank === 0;
  }

  checkpointTensors() {
    return { weights: this.part.weightTensors(), optimizer: this.part.optimizerTensors() };
  }

  dispose(): void {
    this.trainer.dispose();
  }
}
