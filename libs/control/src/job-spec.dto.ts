import 'reflect-metadata';
import { Type } from 'class-transformer';
import {
  ArrayMinSize, IsArray, IsBoolean, IsDefined, IsIn, IsInt, IsNotEmpty, IsNumber, IsObject,
  IsOptional, IsPositive, IsString, Matches, Max, Min, ValidateBy, ValidateIf, ValidateNested,
} from 'class-validator';

// Plain class-validator classes: the worker and the CLI import this package, so no Nest
// decorators here. The coordinator attaches the OpenAPI metadata (jobs/dto/job-spec.api.ts).

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

/** A number no larger than another numeric field of the same object. */
function NotAbove(field: string): PropertyDecorator {
  const other = (o: object) => (o as Record<string, unknown>)[field];
  return ValidateBy({
    name: 'notAbove',
    constraints: [field],
    validator: {
      validate: (v, args) => typeof other(args!.object) !== 'number' || (v as number) <= (other(args!.object) as number),
      defaultMessage: (args) => `must not exceed ${field} (${String(other(args!.object))})`,
    },
  });
}

export class ModelSpecDto {
  /** A name from @tensorfleet/models' listModels() (checked by the coordinator). */
  @IsString() @IsNotEmpty()
  name!: string;

  @IsOptional() @IsInt() @Min(2)
  numClasses?: number;

  @IsOptional() @IsInt() @Min(8)
  inputSize?: number;

  /** Variant options passed through to createModel(). */
  @IsOptional() @IsObject()
  options?: Record<string, unknown>;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const BUCKET_MESSAGE = 'must be an S3 bucket name: 3-63 lower-case letters, digits, "." or "-"';

export class DatasetSpecDto {
  @IsString() @Matches(BUCKET, { message: BUCKET_MESSAGE })
  bucket!: string;

  /** The manifest is `${prefix}/manifest.json`. */
  @IsString() @Matches(/^[^/].*[^/]$|^[^/]$/, { message: 'prefix must not start or end with "/"' })
  prefix!: string;
}

export class ModelParallelSpecDto {
  @IsIn(MODEL_PARALLEL_KINDS)
  kind!: ModelParallelKind;

  /** Pipeline stages (default 2); alexnet-columns is always 2. */
  @IsOptional() @IsInt() @Min(2) @Max(64)
  stages?: number;

  /** Micro-batches per batch (default 4 for a pipeline, 1 for the columns); must divide batchSize. */
  @IsOptional() @IsInt() @Min(1) @Max(65535)
  microBatches?: number;

  /** Pipeline: 'gpipe' (fill-drain, default) or '1f1b' (PipeDream-Flush: less activation memory, needs microBatches ≥ stages). */
  @IsOptional() @IsIn(PIPELINE_SCHEDULES)
  schedule?: PipelineSchedule;

  /** Pipeline: balance the stages by the sections' multiply-adds (default) or by their measured time. */
  @IsOptional() @IsIn(STAGE_BALANCES)
  balance?: StageBalance;

  /** Pipeline: the sections where stages 1.. start (e.g. ["layer3_0"]), instead of balancing; `fleet models --sections NAME` lists them. */
  @IsOptional() @IsArray() @ArrayMinSize(1) @IsString({ each: true }) @IsNotEmpty({ each: true })
  cuts?: string[];
}

export class ParallelismSpecDto {
  @IsInt() @Min(1)
  dataParallel!: number;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => ModelParallelSpecDto)
  modelParallel?: ModelParallelSpecDto;
}

export class OptimizerSpecDto {
  @IsIn(['sgd'])
  type!: 'sgd';

  @IsNumber() @IsPositive()
  lr!: number;

  /** Default 0.9. */
  @IsOptional() @IsNumber() @Min(0) @Max(1)
  momentum?: number;

  /** Default 1e-4. */
  @IsOptional() @IsNumber() @Min(0)
  weightDecay?: number;

  /** Default false. */
  @IsOptional() @IsBoolean()
  nesterov?: boolean;
}

export class LrScheduleSpecDto {
  @IsIn(LR_SCHEDULE_TYPES)
  type!: LrScheduleType;

  /** Linear warm-up from lr/worldSize (or 0) to the scaled lr. Default 0. */
  @IsOptional() @IsInt() @Min(0)
  warmupSteps?: number;

  /** `step`: multiply by gamma every stepSize steps (or at each milestone). */
  @ValidateIf((o: LrScheduleSpecDto) => o.stepSize !== undefined || (o.type === 'step' && o.milestones === undefined))
  @IsDefined({ message: 'a step schedule needs stepSize or milestones' }) @IsInt() @Min(1)
  stepSize?: number;

  /** Default 0.1 for `step` and `plateau`. */
  @IsOptional() @IsNumber() @IsPositive() @Max(1)
  gamma?: number;

  @IsOptional() @IsArray() @ArrayMinSize(1) @IsInt({ each: true }) @Min(1, { each: true })
  milestones?: number[];

  /** `plateau`: evaluations without improvement before decaying. Default 5. */
  @IsOptional() @IsInt() @Min(1)
  patience?: number;

  /** Linear scaling rule (Goyal et al. 2017): effective lr = lr × dataParallel. Default true. */
  @IsOptional() @IsBoolean()
  scaleWithWorldSize?: boolean;
}

export class CheckpointSpecDto {
  /** Steps between checkpoints; 0 or absent: only at the end of each epoch and on pause. */
  @IsOptional() @IsInt() @Min(0)
  intervalSteps?: number;

  /** Committed checkpoints to keep (default 3). */
  @IsOptional() @IsInt() @Min(1)
  keep?: number;

  /** Bucket for `checkpoints/<job>/<step>/`. Default: dataset.bucket. */
  @IsOptional() @IsString() @Matches(BUCKET, { message: BUCKET_MESSAGE })
  bucket?: string;

  /**
   * Default true: snapshot to host memory at the step and upload while training goes on
   * (committed once every rank's parts are up); false: training waits for each upload.
   */
  @IsOptional() @IsBoolean()
  background?: boolean;
}

/** How a run survives lost workers (issue #12): a restart budget and an elastic data-parallel range. */
export class RecoverySpecDto {
  /** Automatic restarts before the job fails. Default 3. */
  @IsOptional() @IsInt() @Min(0) @Max(1000)
  maxRestarts?: number;

  /** Fewest data-parallel replicas a recovered run may continue on. Default parallelism.dataParallel. */
  @IsOptional() @IsInt() @Min(1)
  minDataParallel?: number;

  /** Most data-parallel replicas a run may grow to. Default parallelism.dataParallel. */
  @IsOptional() @IsInt() @Min(1)
  maxDataParallel?: number;
}

export class EvaluationSpecDto {
  @IsOptional() @IsInt() @Min(1)
  everyEpochs?: number;

  /** Default true. */
  @IsOptional() @IsBoolean()
  atEnd?: boolean;

  /**
   * AlexNet's ten-crop test (Krizhevsky et al. 2012): the softmax averaged over the four
   * corner crops, the centre crop and their mirror images. Needs the `resnet` or `alexnet`
   * pipeline (224-pixel crops of a 256 resize). Default false: the centre crop.
   */
  @IsOptional() @IsBoolean()
  tenCrop?: boolean;
}

export class JobSpecDto {
  @IsOptional() @IsString() @Matches(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, { message: 'name must be 1-63 characters of letters, digits, ".", "_" or "-"' })
  name?: string;

  @IsDefined() @IsObject() @ValidateNested() @Type(() => ModelSpecDto)
  model!: ModelSpecDto;

  @IsDefined() @IsObject() @ValidateNested() @Type(() => DatasetSpecDto)
  dataset!: DatasetSpecDto;

  @IsDefined() @IsObject() @ValidateNested() @Type(() => ParallelismSpecDto)
  parallelism!: ParallelismSpecDto;

  /** Per worker. */
  @IsInt() @Min(1)
  batchSize!: number;

  /**
   * Per worker, images per forward/backward pass: the batch's gradients are accumulated over
   * ceil(batchSize / microBatchSize) passes before one all-reduce and update. Default batchSize.
   */
  @IsOptional() @IsInt() @Min(1) @NotAbove('batchSize')
  microBatchSize?: number;

  @ValidateIf((o: JobSpecDto) => o.epochs !== undefined || o.steps === undefined)
  @IsDefined({ message: 'give epochs or steps (or both)' }) @IsInt() @Min(1)
  epochs?: number;

  @IsOptional() @IsInt() @Min(1)
  steps?: number;

  @IsDefined() @IsObject() @ValidateNested() @Type(() => OptimizerSpecDto)
  optimizer!: OptimizerSpecDto;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => LrScheduleSpecDto)
  lrSchedule?: LrScheduleSpecDto;

  /** Default: the model family's pipeline (chosen by the worker). */
  @IsOptional() @IsIn(AUGMENTATIONS)
  augmentation?: Augmentation;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => CheckpointSpecDto)
  checkpoint?: CheckpointSpecDto;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => EvaluationSpecDto)
  evaluation?: EvaluationSpecDto;

  @IsOptional() @IsObject() @ValidateNested() @Type(() => RecoverySpecDto)
  recovery?: RecoverySpecDto;

  /** Default false. */
  @IsOptional() @IsBoolean()
  freezeBatchNorm?: boolean;

  /**
   * With micro-batches: update the batch-norm moving statistics once per step from all of
   * them (torchgpipe's deferred batch norm) instead of once per micro-batch. Default true for
   * pipelines, false otherwise; kept when a job resumes on another plan.
   */
  @IsOptional() @IsBoolean()
  deferredBatchNorm?: boolean;

  /** Gradient wire format of the all-reduce. Default fp32. */
  @IsOptional() @IsIn(WIRE_FORMATS)
  wire?: WireFormat;

  /** Default 0. */
  @IsOptional() @IsInt() @Min(0)
  seed?: number;

  /** Higher runs first. Default 0. */
  @IsOptional() @IsInt() @Min(-1000) @Max(1000)
  priority?: number;
}

/**
 * The optional body of POST /jobs/:id/resume: a paused or failed job may resume on another
 * plan (more or fewer stages, columns, data-parallel replicas). The checkpoint is per weight,
 * so any plan of the same model reads it; the micro-batch size is kept unless the body sets it.
 */
export class ResumeJobDto {
  @IsOptional() @IsObject() @ValidateNested() @Type(() => ParallelismSpecDto)
  parallelism?: ParallelismSpecDto;
}
