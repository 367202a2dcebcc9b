import { s, type Infer, type InferInput } from './schema';
import { datasetPrefixProblem } from './paths';

// The job spec, once: its TypeScript types, its validator, its defaults and the coordinator's
// OpenAPI schema all come from these declarations (see schema.ts).

export const MODEL_PARALLEL_KINDS = ['alexnet-columns', 'pipeline'] as const;
export const PIPELINE_SCHEDULES = ['gpipe', '1f1b'] as const;
export const STAGE_BALANCES = ['macs', 'time'] as const;
export const LR_SCHEDULE_TYPES = ['constant', 'step', 'cosine', 'plateau'] as const;
export const AUGMENTATIONS = ['resnet', 'alexnet', 'small', 'none'] as const;
export const WIRE_FORMATS = ['fp32', 'fp16'] as const;
export type ModelParallelKind = (typeof MODEL_PARALLEL_KINDS)[number];
export type PipelineSchedule = (typeof PIPELINE_SCHEDULES)[number];
export type StageBalance = (typeof STAGE_BALANCES)[number];
export type LrScheduleType = (typeof LR_SCHEDULE_TYPES)[number];
export type Augmentation = (typeof AUGMENTATIONS)[number];
export type WireFormat = (typeof WIRE_FORMATS)[number];

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const BUCKET_MESSAGE = 'must be an S3 bucket name: 3-63 lower-case letters, digits, "." or "-"';
const bucket = () => s.string().pattern(BUCKET, BUCKET_MESSAGE);
type Spec = Record<string, any>;

const modelSpec = s.object('ModelSpec', {
  name: s.string().nonEmpty().describe('A registered model (@tensorfleet/models listModels(), as `fleet models` prints them)', 'resnet18'),
  numClasses: s.int().min(2).optional().describe("Default: the dataset manifest's class count"),
  inputSize: s.int().min(8).optional().describe("Default: the model's"),
  options: s.record().optional().describe('Variant options passed through to createModel()'),
});

const datasetSpec = s.object('DatasetSpec', {
  bucket: bucket().describe('Bucket of the dataset (and, by default, of the checkpoints)', 'datasets'),
  prefix: s.string().check((v) => (typeof v === 'string' ? datasetPrefixProblem(v) : undefined)).pattern(/^[^/].*[^/]$|^[^/]$/, 'must not start or end with "/"')
    .describe('Key prefix of the dataset: the manifest is `<prefix>/manifest.json`. Relative, "/"-separated, no empty, "." or ".." segments', 'cifar10'),
});

export const modelParallelSpec = s.object('ModelParallelSpec', {
  kind: s.enum(MODEL_PARALLEL_KINDS).describe('pipeline: a ResNet cut into stages at block boundaries; alexnet-columns: alexnet_paper on its two columns'),
  stages: s.int().min(2).max(64).default(2).describe('Pipeline stages; alexnet-columns always has 2'),
  microBatches: s.int().min(1).max(65535).defaultFrom(({ parent }) => (parent.kind === 'pipeline' ? 4 : 1), '4 for a pipeline, 1 for the columns')
    .describe('Micro-batches per batch; must divide batchSize'),
  schedule: s.enum(PIPELINE_SCHEDULES).defaultWhen('gpipe', ({ parent }) => parent.kind === 'pipeline', 'gpipe (pipelines only)')
    .describe('Pipeline: gpipe (fill-drain) or 1f1b (PipeDream-Flush: less activation memory, needs microBatches >= stages)'),
  balance: s.enum(STAGE_BALANCES).defaultWhen('macs', ({ parent }) => parent.kind === 'pipeline', 'macs (pipelines only)')
    .describe("Pipeline: balance the stages by the sections' multiply-adds or by their measured time"),
  cuts: s.array(s.string().nonEmpty()).minItems(1).optional()
    .describe('Pipeline: the sections where stages 1.. start (e.g. ["layer3_0"]) instead of balancing; `fleet models --sections NAME` lists them'),
}).finalize((mp) => {
  // The columns are the paper's two, whatever was asked.
  if (mp.kind === 'alexnet-columns') mp.stages = 2;
});

export const parallelismSpec = s.object('ParallelismSpec', {
  dataParallel: s.int().min(1).describe('Data-parallel replicas; the job takes dataParallel × stages workers, gang-scheduled together', 2),
  modelParallel: modelParallelSpec.optional().describe('Each replica split over several workers: pipeline stages or AlexNet columns'),
});

const optimizerSpec = s.object('OptimizerSpec', {
  type: s.enum(['sgd'] as const),
  lr: s.number().positive().describe('Base learning rate (scaled by dataParallel under lrSchedule.scaleWithWorldSize)', 0.1),
  momentum: s.number().min(0).max(1).default(0.9),
  weightDecay: s.number().min(0).default(1e-4),
  nesterov: s.boolean().default(false),
});

const lrScheduleSpec = s.object('LrScheduleSpec', {
  type: s.enum(LR_SCHEDULE_TYPES),
  warmupSteps: s.int().min(0).default(0).describe('Linear warm-up from lr/worldSize (or 0) to the scaled lr'),
  stepSize: s.int().min(1).requiredWhen(({ parent }) => parent.type === 'step' && parent.milestones == null, 'a step schedule needs stepSize or milestones')
    .describe('step: multiply by gamma every stepSize steps (or give milestones)'),
  gamma: s.number().positive().max(1).default(0.1).describe('Decay factor of step and plateau'),
  milestones: s.array(s.int().min(1)).minItems(1).optional().describe('step: the steps where the rate is multiplied by gamma'),
  patience: s.int().min(1).default(5).describe('plateau: evaluations without improvement before decaying'),
  scaleWithWorldSize: s.boolean().default(true).describe('Linear scaling rule (Goyal et al. 2017): effective lr = lr × dataParallel'),
}).finalize((sched) => {
  if (sched.milestones) sched.milestones.sort((a, b) => a - b);
});

const checkpointSpec = s.object('CheckpointSpec', {
  intervalSteps: s.int().min(0).default(0).describe('Steps between checkpoints; 0: only at the end of each epoch and on pause'),
  keep: s.int().min(1).default(3).describe('Committed checkpoints to keep'),
  bucket: bucket().defaultFrom(({ root }) => (root.dataset as Spec).bucket as string, 'dataset.bucket')
    .describe('Bucket of `checkpoints/<jobId>/<step>/`; the key prefix is always the job\'s own'),
  background: s.boolean().default(true)
    .describe('Snapshot to host memory at the step and upload while training goes on (committed once every rank\'s parts are up); false: training waits for each upload'),
});

const recoverySpec = s.object('RecoverySpec', {
  maxRestarts: s.int().min(0).max(1000).optional().describe('Automatic restarts after lost workers before the job fails. Default 3'),
  // At most a run's largest world: the elastic check walks the range, and 1e9 would not fit in memory.
  minDataParallel: s.int().max(65535).min(1).optional()
    .describe('Fewest replicas a recovered run continues on (elastic when below dataParallel: the global batch batchSize × dataParallel is kept, every size in the range must divide it). Default parallelism.dataParallel'),
  maxDataParallel: s.int().max(65535).min(1).optional()
    .describe('Most replicas a run grows to when workers are free (at its next step, through a checkpoint). Default parallelism.dataParallel'),
}, 'How a run survives lost workers: a restart budget and an elastic data-parallel range (defaults filled by recoveryOf(), so that specs stored before the field existed read the same)');

const evaluationSpec = s.object('EvaluationSpec', {
  everyEpochs: s.int().min(1).optional().describe('Held-out evaluation every this many epochs (its result feeds the plateau schedule)'),
  atEnd: s.boolean().default(true),
  tenCrop: s.boolean().default(false)
    .describe("AlexNet's ten-crop test (Krizhevsky et al. 2012): the softmax averaged over the four corner crops, the centre crop and their mirrors; needs the resnet or alexnet pipeline. false: the centre crop"),
});

export const jobSpecSchema = s.object('JobSpec', {
  name: s.string().pattern(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be 1-63 characters of letters, digits, ".", "_" or "-"').optional().describe('A name to find the job by', 'cifar-resnet18'),
  model: modelSpec,
  dataset: datasetSpec,
  parallelism: parallelismSpec,
  batchSize: s.int().min(1).describe('Per data-parallel replica (a pipeline or column pair takes it whole)', 32),
  microBatchSize: s.int().min(1)
    .check((v, { parent }) => (typeof parent.batchSize === 'number' && !((v as number) <= parent.batchSize) ? `must not exceed batchSize (${parent.batchSize})` : undefined))
    .optional().describe('Per worker, images per forward/backward pass: the batch\'s gradients are accumulated over ceil(batchSize / microBatchSize) passes before one all-reduce and update. Default batchSize'),
  epochs: s.int().min(1).requiredWhen(({ parent }) => parent.steps == null, 'give epochs or steps (or both)').describe('Give epochs or steps (or both; steps wins)'),
  steps: s.int().min(1).optional(),
  optimizer: optimizerSpec,
  lrSchedule: lrScheduleSpec.default({ type: 'constant' }),
  augmentation: s.enum(AUGMENTATIONS).optional().describe("Default: the model family's pipeline (chosen by the worker)"),
  checkpoint: checkpointSpec.default({}),
  evaluation: evaluationSpec.default({}),
  recovery: recoverySpec.optional(),
  freezeBatchNorm: s.boolean().default(false),
  deferredBatchNorm: s.boolean().defaultFrom(({ root }) => (root.parallelism as Spec).modelParallel?.kind === 'pipeline', 'true for pipelines, false otherwise')
    .describe('With micro-batches: update the batch-norm moving statistics once per step from all of them (torchgpipe\'s deferred batch norm) instead of once per micro-batch; kept when a job resumes on another plan'),
  wire: s.enum(WIRE_FORMATS).default('fp32').describe('Gradient wire format of the all-reduce'),
  seed: s.int().min(0).default(0),
  priority: s.int().min(-1000).max(1000).default(0).describe('Higher runs first'),
}).finalize((spec) => {
  // A micro-batch as large as the batch is no accumulation at all.
  if (spec.microBatchSize !== undefined && spec.microBatchSize >= spec.batchSize) delete spec.microBatchSize;
});

/**
 * The optional body of POST /jobs/:id/resume: a paused or failed job may resume on another
 * plan (more or fewer stages, columns, data-parallel replicas). The checkpoint is per weight,
 * so any plan of the same model reads it; the micro-batch size is kept unless the body sets it.
 */
export const resumeJobSchema = s.object('ResumeJob', {
  parallelism: parallelismSpec.optional().describe('Resume on this plan instead (the micro-batch size is kept unless given)'),
});

/**
 * The optional body of POST /jobs/:id/pause. `atStep`: the ranks checkpoint and stop after that
 * step (the step's stop vote), not at their next one: a pause at an epoch's end, or a resize at a
 * step of your choosing (pause there, resume with `parallelism`).
 */
export const pauseJobSchema = s.object('PauseJob', {
  atStep: s.int().min(1).optional().describe('Pause after this step (the job must not have reached it yet); default: after the step under way'),
});

/** A validated job spec with every default filled in: what job records and assignments carry. */
export type JobSpec = Infer<typeof jobSpecSchema>;
/** What a client may send as a job spec (POST /jobs, `fleet submit`). */
export type JobSpecInput = InferInput<typeof jobSpecSchema>;
export type ParallelismSpec = Infer<typeof parallelismSpec>;
export type ParallelismSpecInput = InferInput<typeof parallelismSpec>;
export type ResumeJobInput = InferInput<typeof resumeJobSchema>;
export type PauseJobInput = InferInput<typeof pauseJobSchema>;
