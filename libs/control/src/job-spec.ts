import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError, type ValidatorOptions } from 'class-validator';
import { parse as parseYaml } from 'yaml';
import {
  JobSpecDto, type Augmentation, type ParallelismSpecDto, type LrScheduleType, type ModelParallelKind, type PipelineSchedule, type StageBalance, type WireFormat,
} from './job-spec.dto';

/**
 * The training pipeline of a spec without `augmentation`, from the model's family and input
 * size: AlexNet's for AlexNet, ResNet's random-resized crop for ImageNet-sized inputs,
 * pad-and-crop for small ones (the CIFAR ResNets). The worker trains with it; the coordinator
 * checks options that need a given pipeline against it.
 */
export function defaultAugmentation(family: string, inputSize: number): Augmentation {
  if (inputSize < 64) return 'small';
  return family === 'alexnet' ? 'alexnet' : 'resnet';
}

/** Held-out images: resize 256 + centre crop (or ten crops) after the ImageNet pipelines, as-is otherwise. */
export function evalPipeline(train: Augmentation, tenCrop: boolean): 'eval' | 'tencrop' | 'none' {
  if (train !== 'resnet' && train !== 'alexnet') return 'none';
  return tenCrop ? 'tencrop' : 'eval';
}

/** A validated job spec with every default filled in: what assignments carry. */
export interface JobSpec {
  name?: string;
  model: { name: string; numClasses?: number; inputSize?: number; options?: Record<string, unknown> };
  dataset: { bucket: string; prefix: string };
  parallelism: {
    dataParallel: number;
    modelParallel?: {
      kind: ModelParallelKind;
      stages: number;
      microBatches: number;
      /** Pipeline only. */
      schedule?: PipelineSchedule;
      balance?: StageBalance;
      cuts?: string[];
    };
  };
  batchSize: number;
  /** Images per forward/backward pass (gradient accumulation); absent = batchSize. */
  microBatchSize?: number;
  epochs?: number;
  steps?: number;
  optimizer: { type: 'sgd'; lr: number; momentum: number; weightDecay: number; nesterov: boolean };
  lrSchedule: {
    type: LrScheduleType; warmupSteps: number; stepSize?: number; gamma: number; milestones?: number[];
    patience: number; scaleWithWorldSize: boolean;
  };
  augmentation?: Augmentation;
  checkpoint: { intervalSteps: number; keep: number; bucket: string; background: boolean };
  /** Absent = the defaults of recoveryOf(). */
  recovery?: { maxRestarts?: number; minDataParallel?: number; maxDataParallel?: number };
  evaluation: { everyEpochs?: number; atEnd: boolean; tenCrop: boolean };
  freezeBatchNorm: boolean;
  /** BN moving statistics once per step from all its micro-batches (see JobSpecDto). */
  deferredBatchNorm: boolean;
  wire: WireFormat;
  seed: number;
  priority: number;
}

export interface FieldError {
  /** Dotted path into the spec, e.g. `optimizer.lr` or `lrSchedule.milestones.0`. */
  field: string;
  message: string;
}

export type ParseResult = { spec: JobSpec; errors?: undefined } | { spec?: undefined; errors: FieldError[] };

/** Options every validator of a JobSpecDto uses (the coordinator's ValidationPipe too). */
export const JOB_SPEC_VALIDATOR_OPTIONS: ValidatorOptions = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
  // One message per field: a missing number is "missing", not also "not an integer".
  stopAtFirstError: true,
};

/** class-validator's error tree as one `field: message` entry per failed constraint. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const e of errors) {
    const field = parent ? `${parent}.${e.property}` : e.property;
    for (const message of Object.values(e.constraints ?? {})) {
      // class-validator starts messages with the bare property name; the field says it already.
      out.push({ field, message: message.startsWith(`${e.property} `) ? message.slice(e.property.length + 1) : message });
    }
    if (e.children?.length) out.push(...flattenValidationErrors(e.children, field));
  }
  return out;
}

/** Fills every default of a validated DTO into a plain JSON-safe JobSpec. */
export function applyJobSpecDefaults(dto: JobSpecDto): JobSpec {
  const mp = dto.parallelism.modelParallel;
  const sched = dto.lrSchedule;
  const spec: JobSpec = {
    ...(dto.name !== undefined ? { name: dto.name } : {}),
    model: strip({ name: dto.model.name, numClasses: dto.model.numClasses, inputSize: dto.model.inputSize, options: dto.model.options }),
    dataset: { bucket: dto.dataset.bucket, prefix: dto.dataset.prefix },
    parallelism: strip({
      dataParallel: dto.parallelism.dataParallel,
      modelParallel: mp && strip({
        kind: mp.kind,
        stages: mp.kind === 'alexnet-columns' ? 2 : (mp.stages ?? 2),
        microBatches: mp.microBatches ?? (mp.kind === 'pipeline' ? 4 : 1),
        // the columns take none of these: kept when given, so that specErrors() names them
        schedule: mp.kind === 'pipeline' ? (mp.schedule ?? 'gpipe') : mp.schedule,
        balance: mp.kind === 'pipeline' ? (mp.balance ?? 'macs') : mp.balance,
        cuts: mp.cuts,
      }),
    }),
    batchSize: dto.batchSize,
    ...(dto.microBatchSize !== undefined && dto.microBatchSize < dto.batchSize ? { microBatchSize: dto.microBatchSize } : {}),
    ...(dto.epochs !== undefined ? { epochs: dto.epochs } : {}),
    ...(dto.steps !== undefined ? { steps: dto.steps } : {}),
    optimizer: {
      type: 'sgd', lr: dto.optimizer.lr, momentum: dto.optimizer.momentum ?? 0.9,
      weightDecay: dto.optimizer.weightDecay ?? 1e-4, nesterov: dto.optimizer.nesterov ?? false,
    },
    lrSchedule: strip({
      type: sched?.type ?? 'constant',
      warmupSteps: sched?.warmupSteps ?? 0,
      stepSize: sched?.stepSize,
      gamma: sched?.gamma ?? 0.1,
      milestones: sched?.milestones && [...sched.milestones].sort((a, b) => a - b),
      patience: sched?.patience ?? 5,
      scaleWithWorldSize: sched?.scaleWithWorldSize ?? true,
    }),
    ...(dto.augmentation !== undefined ? { augmentation: dto.augmentation } : {}),
    checkpoint: {
      intervalSteps: dto.checkpoint?.intervalSteps ?? 0,
      keep: dto.checkpoint?.keep ?? 3,
      bucket: dto.checkpoint?.bucket ?? dto.dataset.bucket,
      background: dto.checkpoint?.background ?? true,
    },
    ...(dto.recovery !== undefined ? { recovery: strip({ ...dto.recovery }) } : {}),
    evaluation: strip({ everyEpochs: dto.evaluation?.everyEpochs, atEnd: dto.evaluation?.atEnd ?? true, tenCrop: dto.evaluation?.tenCrop ?? false }),
    freezeBatchNorm: dto.freezeBatchNorm ?? false,
    deferredBatchNorm: dto.deferredBatchNorm ?? mp?.kind === 'pipeline',
    wire: dto.wire ?? 'fp32',
    seed: dto.seed ?? 0,
    priority: dto.priority ?? 0,
  };
  return spec;
}

/**
 * Validates a job spec given as an object, or as YAML/JSON text (JSON is YAML), and fills
 * the defaults. Never throws on bad input: every problem comes back as a FieldError.
 */
export function parseJobSpec(input: unknown): ParseResult {
  let obj = input;
  if (typeof input === 'string') {
    try {
      obj = parseYaml(input);
    } catch (err) {
      return { errors: [{ field: '', message: `not valid YAML/JSON: ${(err as Error).message}` }] };
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    return { errors: [{ field: '', message: 'a job spec must be an object' }] };
  }
  const dto = plainToInstance(JobSpecDto, obj);
  const errors = flattenValidationErrors(validateSync(dto, JOB_SPEC_VALIDATOR_OPTIONS));
  if (errors.length) return { errors };
  const spec = applyJobSpecDefaults(dto);
  const more = specErrors(spec);
  return more.length ? { errors: more } : { spec };
}

/**
 * What no single field can say wrong, but their combination can: the checks that need only
 * the spec (the coordinator adds those that need the model and the dataset).
 */
export function specErrors(spec: JobSpec): FieldError[] {
  const errors: FieldError[] = [];
  const mp = spec.parallelism.modelParallel;
  if (mp) {
    const field = 'parallelism.modelParallel.microBatches';
    if (spec.batchSize % mp.microBatches !== 0) {
      errors.push({ field, message: `${mp.microBatches} micro-batches do not divide batchSize ${spec.batchSize}: every micro-batch must have the same size` });
    }
    if (mp.kind === 'pipeline' && mp.schedule === '1f1b' && mp.microBatches < mp.stages) {
      errors.push({ field, message: `1F1B needs at least as many micro-batches as stages (${mp.stages}), got ${mp.microBatches}; use more micro-batches or schedule gpipe` });
    }
    if (spec.microBatchSize !== undefined) {
      errors.push({ field: 'microBatchSize', message: 'a model-parallel job cuts its batch into parallelism.modelParallel.microBatches; leave microBatchSize out' });
    }
    if (mp.kind === 'alexnet-columns' && (mp.schedule !== undefined || mp.balance !== undefined || mp.cuts !== undefined)) {
      errors.push({ field: 'parallelism.modelParallel', message: 'schedule, balance and cuts are for pipelines; alexnet-columns splits at the paper\'s exchanges' });
    }
  }
  const r = recoveryOf(spec);
  if (r.minDataParallel > spec.parallelism.dataParallel) {
    errors.push({ field: 'recovery.minDataParallel', message: `must not exceed parallelism.dataParallel (${spec.parallelism.dataParallel})` });
  }
  if (r.maxDataParallel < spec.parallelism.dataParallel) {
    errors.push({ field: 'recovery.maxDataParallel', message: `must be at least parallelism.dataParallel (${spec.parallelism.dataParallel})` });
  }
  if (r.minDataParallel < r.maxDataParallel) errors.push(...elasticErrors(spec, r));
  const world = worldSizeOf(spec);
  if (world > 65535) errors.push({ field: 'parallelism', message: `${world} workers is more than a run can have (65535)` });
  return errors;
}

/** Formats FieldErrors one per line, `field: message`. */
export function formatFieldErrors(errors: FieldError[]): string {
  return errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('\n');
}

function strip<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

/** Images per forward/backward pass of a spec: its micro-batches' size. */
export function microBatchSizeOf(spec: Pick<JobSpec, 'batchSize' | 'microBatchSize' | 'parallelism'>): number {
  const mp = spec.parallelism.modelParallel;
  return mp ? spec.batchSize / mp.microBatches : (spec.microBatchSize ?? spec.batchSize);
}

/**
 * The spec of a job resumed on another plan: the new parallelism (its defaults filled in),
 * with the micro-batch size of the old one where the new one leaves it open, so that the
 * arithmetic of a step does not change (batch-norm deferral is kept as it was).
 */
export function respecParallelism(spec: JobSpec, parallelism: ParallelismSpecDto): JobSpec {
  const micro = microBatchSizeOf(spec);
  const mp = parallelism.modelParallel;
  const dto = plainToInstance(JobSpecDto, {
    ...JSON.parse(JSON.stringify(spec)),
    parallelism: JSON.parse(JSON.stringify(parallelism)),
  }) as JobSpecDto;
  delete dto.microBatchSize;
  if (mp && mp.microBatches === undefined && Number.isInteger(spec.batchSize / micro)) dto.parallelism.modelParallel!.microBatches = spec.batchSize / micro;
  if (!mp && micro < spec.batchSize) dto.microBatchSize = micro;
  dto.deferredBatchNorm = spec.deferredBatchNorm;
  return applyJobSpecDefaults(dto);
}

/** Workers a job's run takes: its data-parallel replicas × the stages (or columns) of each. */
export function worldSizeOf(spec: Pick<JobSpec, 'parallelism'>): number {
  return spec.parallelism.dataParallel * (spec.parallelism.modelParallel?.stages ?? 1);
}

/** Checkpoints live beside the dataset unless the spec names a bucket of their own. */
export function checkpointBucket(spec: Pick<JobSpec, 'checkpoint' | 'dataset'>): string {
  return spec.checkpoint?.bucket ?? spec.dataset.bucket;
}

/**
 * How a job's run survives lost workers, with the defaults filled in: 3 restarts and exactly
 * the data-parallel replicas it asked for. Kept out of applyJobSpecDefaults so that specs
 * stored before the field existed read the same.
 */
export function recoveryOf(spec: Pick<JobSpec, 'parallelism' | 'recovery'>): { maxRestarts: number; minDataParallel: number; maxDataParallel: number } {
  const dp = spec.parallelism.dataParallel;
  return {
    maxRestarts: spec.recovery?.maxRestarts ?? 3,
    minDataParallel: spec.recovery?.minDataParallel ?? dp,
    maxDataParallel: spec.recovery?.maxDataParallel ?? dp,
  };
}

/**
 * A job whose replica count may change between runs (recovery.minDataParallel below or
 * maxDataParallel above parallelism.dataParallel): its data position is kept in the epoch's
 * global order and its global batch is held constant (batchSize × dataParallel), so that it
 * trains the same on any size in the range.
 */
export function isElastic(spec: Pick<JobSpec, 'parallelism' | 'recovery'>): boolean {
  const r = recoveryOf(spec);
  return r.minDataParallel < r.maxDataParallel;
}

/** Samples per optimizer step, over all replicas: held constant by elastic runs whatever their size. */
export function globalBatchOf(spec: Pick<JobSpec, 'parallelism' | 'batchSize'>): number {
  return spec.batchSize * spec.parallelism.dataParallel;
}

function elasticErrors(spec: JobSpec, r: ReturnType<typeof recoveryOf>): FieldError[] {
  if (spec.parallelism.modelParallel) {
    return [{ field: 'recovery', message: 'minDataParallel/maxDataParallel other than parallelism.dataParallel need a data-parallel job (no modelParallel): leave them out, or drop modelParallel' }];
  }
  const g = globalBatchOf(spec);
  const bad = Array.from({ length: r.maxDataParallel - r.minDataParallel + 1 }, (_, i) => r.minDataParallel + i).filter((n) => g % n !== 0);
  if (!bad.length) return [];
  return [{
    field: 'recovery',
    message: `the global batch (batchSize × dataParallel = ${g}) is held constant across sizes ${r.minDataParallel}..${r.maxDataParallel}, so every size must divide it; ${bad.join(', ')} do${bad.length === 1 ? 'es' : ''} not: change batchSize or the range`,
  }];
}
