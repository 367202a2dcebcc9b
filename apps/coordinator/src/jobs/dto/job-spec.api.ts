import { ApiProperty, type ApiPropertyOptions } from '@nestjs/swagger';
import {
  AUGMENTATIONS, CheckpointSpecDto, DatasetSpecDto, RecoverySpecDto, EvaluationSpecDto, JobSpecDto, LR_SCHEDULE_TYPES, LrScheduleSpecDto,
  MODEL_PARALLEL_KINDS, ModelParallelSpecDto, ModelSpecDto, OptimizerSpecDto, ParallelismSpecDto, PIPELINE_SCHEDULES, ResumeJobDto, STAGE_BALANCES, WIRE_FORMATS,
} from '@tensorfleet/control';

// The job spec classes live in @tensorfleet/control without Nest decorators (the worker
// and the CLI import them); the OpenAPI metadata is attached to the same classes here.
type Props = Record<string, ApiPropertyOptions>;
const opt = (o: ApiPropertyOptions): ApiPropertyOptions => ({ required: false, ...o }) as ApiPropertyOptions;

const DOCS: [abstract new (...args: never[]) => object, Props][] = [
  [ModelSpecDto, {
    name: { type: String, description: 'A registered model (@tensorfleet/models listModels(), as fleet models prints them)', example: 'resnet18' },
    numClasses: opt({ type: Number, minimum: 2, description: 'Default: the dataset manifest\'s class count' }),
    inputSize: opt({ type: Number, minimum: 8, description: 'Default: the model\'s' }),
    options: opt({ type: Object, description: 'Variant options passed to createModel()' }),
  }],
  [DatasetSpecDto, {
    bucket: { type: String, example: 'datasets' },
    prefix: { type: String, description: 'The manifest is `${prefix}/manifest.json`', example: 'cifar10' },
  }],
  [ModelParallelSpecDto, {
    kind: { enum: [...MODEL_PARALLEL_KINDS], description: 'pipeline: a ResNet cut into stages at block boundaries; alexnet-columns: alexnet_paper on its two columns' },
    stages: opt({ type: Number, minimum: 2, maximum: 64, description: 'pipeline: default 2; alexnet-columns: always 2' }),
    microBatches: opt({ type: Number, minimum: 1, description: 'Micro-batches per step (must divide batchSize): pipeline default 4, alexnet-columns 1' }),
    schedule: opt({ enum: [...PIPELINE_SCHEDULES], default: 'gpipe', description: 'pipeline: gpipe (fill-drain) or 1f1b (PipeDream-Flush, needs microBatches >= stages)' }),
    balance: opt({ enum: [...STAGE_BALANCES], default: 'macs', description: 'pipeline: balance the stages by multiply-adds or by measured time' }),
    cuts: opt({ type: [String], description: 'pipeline: sections where stages 1.. start, e.g. ["layer3_0"]' }),
  }],
  [ParallelismSpecDto, {
    dataParallel: { type: Number, minimum: 1, description: 'Data-parallel replicas; the job takes dataParallel × stages workers, gang-scheduled together', example: 2 },
    modelParallel: opt({ type: () => ModelParallelSpecDto }),
  }],
  [OptimizerSpecDto, {
    type: { enum: ['sgd'] },
    lr: { type: Number, exclusiveMinimum: true, minimum: 0, example: 0.1 },
    momentum: opt({ type: Number, minimum: 0, maximum: 1, default: 0.9 }),
    weightDecay: opt({ type: Number, minimum: 0, default: 1e-4 }),
    nesterov: opt({ type: Boolean, default: false }),
  }],
  [LrScheduleSpecDto, {
    type: { enum: [...LR_SCHEDULE_TYPES] },
    warmupSteps: opt({ type: Number, minimum: 0, default: 0 }),
    stepSize: opt({ type: Number, minimum: 1, description: 'step: decay every stepSize steps (or give milestones)' }),
    gamma: opt({ type: Number, default: 0.1 }),
    milestones: opt({ type: [Number] }),
    patience: opt({ type: Number, minimum: 1, default: 5, description: 'plateau' }),
    scaleWithWorldSize: opt({ type: Boolean, default: true, description: 'Linear scaling rule: lr × dataParallel' }),
  }],
  [CheckpointSpecDto, {
    intervalSteps: opt({ type: Number, minimum: 0, default: 0, description: '0: at epoch ends and on pause only' }),
    keep: opt({ type: Number, minimum: 1, default: 3 }),
    bucket: opt({ type: String, description: 'Default: dataset.bucket' }),
  }],
  [RecoverySpecDto, {
    maxRestarts: opt({ type: Number, minimum: 0, maximum: 1000, default: 3, description: 'Automatic restarts after lost workers before the job fails' }),
    minDataParallel: opt({ type: Number, minimum: 1, description: 'Fewest replicas a recovered run continues on (elastic when below dataParallel: the global batch batchSize × dataParallel is kept, every size in the range must divide it). Default parallelism.dataParallel' }),
    maxDataParallel: opt({ type: Number, minimum: 1, description: 'Most replicas a run grows to when workers are free (at its next step, through a checkpoint). Default parallelism.dataParallel' }),
  }],
  [EvaluationSpecDto, {
    everyEpochs: opt({ type: Number, minimum: 1, description: 'Held-out evaluation every this many epochs (its result feeds the plateau schedule)' }),
    atEnd: opt({ type: Boolean, default: true }),
    tenCrop: opt({ type: Boolean, default: false, description: "AlexNet's ten-crop test: softmax averaged over 4 corners + centre and their mirrors (resnet/alexnet pipelines)" }),
  }],
  [JobSpecDto, {
    name: opt({ type: String, example: 'cifar-resnet18' }),
    model: { type: () => ModelSpecDto },
    dataset: { type: () => DatasetSpecDto },
    parallelism: { type: () => ParallelismSpecDto },
    batchSize: { type: Number, minimum: 1, description: 'Per data-parallel replica (a pipeline or column pair takes it whole)', example: 32 },
    microBatchSize: opt({ type: Number, minimum: 1, description: 'Per worker, images per forward/backward pass (gradient accumulation; at most batchSize). Default batchSize' }),
    epochs: opt({ type: Number, minimum: 1, description: 'Give epochs or steps (or both; steps wins)' }),
    steps: opt({ type: Number, minimum: 1 }),
    optimizer: { type: () => OptimizerSpecDto },
    lrSchedule: opt({ type: () => LrScheduleSpecDto }),
    augmentation: opt({ enum: [...AUGMENTATIONS], description: 'Default: the model family\'s' }),
    checkpoint: opt({ type: () => CheckpointSpecDto }),
    evaluation: opt({ type: () => EvaluationSpecDto }),
    recovery: opt({ type: () => RecoverySpecDto }),
    freezeBatchNorm: opt({ type: Boolean, default: false }),
    deferredBatchNorm: opt({ type: Boolean, description: 'BN moving statistics once per step from all micro-batches (default: true for pipelines)' }),
    wire: opt({ enum: [...WIRE_FORMATS], default: 'fp32' }),
    seed: opt({ type: Number, minimum: 0, default: 0 }),
    priority: opt({ type: Number, minimum: -1000, maximum: 1000, default: 0, description: 'Higher runs first' }),
  }],
  [ResumeJobDto, {
    parallelism: opt({ type: () => ParallelismSpecDto, description: 'Resume on this plan instead (the micro-batch size is kept unless given)' }),
  }],
];

let applied = false;

/** Attaches @ApiProperty metadata to the control package's job spec classes (once). */
export function documentJobSpec(): void {
  if (applied) return;
  applied = true;
  for (const [cls, props] of DOCS) {
    for (const [key, o] of Object.entries(props)) ApiProperty(o)(cls.prototype as object, key);
  }
}
