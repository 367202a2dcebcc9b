import type { JobSpec } from '@tensorfleet/control';
import { createModel, modelSections, type CreateModelOptions } from '@tensorfleet/models';
import { createTrainerFromSpec } from '../from-spec';
import { createLrSchedule } from '../schedule/lr-schedule';
import { ColumnTrainer } from './column-trainer';
import { DataParallelTrainer } from './data-parallel-trainer';
import { pipelineStages } from './layout';
import { PipelineStageTrainer } from './pipeline-trainer';
import type { ParallelPlan } from './plan';
import type { PlanComms, PlanTrainer } from './plan-trainer';

export interface PlanTrainerContext {
  spec: JobSpec;
  /** createModel's options (modelOptionsFromSpec, with the seed). */
  modelOptions: CreateModelOptions;
  plan: ParallelPlan;
  rank: number;
  comms: PlanComms;
  stepsPerEpoch: number;
  totalSteps: number;
  /** Pipelines: every stage's sections (default: the spec's cuts, else balanced by multiply-adds). */
  stageSections?: string[][];
  bucketBytes?: number;
  /** Elastic runs (control's isElastic): see TrainerFromSpecOptions.elastic. */
  elastic?: { scheduleWorldSize: number; microBatchSize: number };
}

/**
 * The trainer of one rank of a plan, as the job spec describes it: SGD, the learning-rate
 * schedule (the linear scaling rule over the data-parallel replicas, whatever the stages),
 * micro-batches, batch-norm handling, the gradient wire format.
 */
export function createPlanTrainer(ctx: PlanTrainerContext): PlanTrainer {
  const { spec, plan, rank, comms } = ctx;
  const place = plan.place(rank);
  if (plan.kind === 'data') {
    const model = createModel(spec.model.name, ctx.modelOptions);
    const trainer = createTrainerFromSpec(spec, model, comms.world, { stepsPerEpoch: ctx.stepsPerEpoch, totalSteps: ctx.totalSteps, bucketBytes: ctx.bucketBytes, elastic: ctx.elastic });
    return new DataParallelTrainer(plan, place, trainer);
  }
  const s = spec.lrSchedule;
  const schedule = createLrSchedule(
    { type: s.type, lr: spec.optimizer.lr, warmupSteps: s.warmupSteps, stepSize: s.stepSize, milestones: s.milestones, gamma: s.gamma, patience: s.patience, scaleWithWorldSize: s.scaleWithWorldSize },
    { stepsPerEpoch: ctx.stepsPerEpoch, totalSteps: ctx.totalSteps, worldSize: plan.replicas, baseBatch: spec.batchSize },
  );
  const common = {
    model: spec.model.name,
    modelOptions: ctx.modelOptions,
    plan,
    place,
    comms,
    optimizer: { momentum: spec.optimizer.momentum, weightDecay: spec.optimizer.weightDecay, nesterov: spec.optimizer.nesterov },
    schedule,
    batchSize: spec.batchSize,
    freezeBatchNorm: spec.freezeBatchNorm,
    wire: spec.wire,
    bucketBytes: ctx.bucketBytes,
  };
  if (plan.kind === 'columns') return new ColumnTrainer(common);
  const stageSections = ctx.stageSections ?? pipelineStages(modelSections(spec.model.name, ctx.modelOptions), plan);
  return new PipelineStageTrainer({ ...common, stageSections });
}
