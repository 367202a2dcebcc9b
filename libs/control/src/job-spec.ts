import { parse as parseYaml } from 'yaml';
import { jobSpecSchema, type Augmentation, type JobSpec, type JobSpecInput, type ParallelismSpecInput } from './job-spec.schema';
import type { FieldError } from './schema';

export type { FieldError } from './schema';
export type { JobSpec } from './job-spec.schema';

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

export type ParseResult = { spec: JobSpec; errors?: undefined } | { spec?: undefined; errors: FieldError[] };

/** Fills every default of a validated spec (jobSpecSchema.validate passed) into a plain JSON-safe JobSpec. */
export function applyJobSpecDefaults(input: JobSpecInput): JobSpec {
  return jobSpecSchema.withDefaults(input);
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
  const parsed = jobSpecSchema.parse(obj);
  if (parsed.errors) return { errors: parsed.errors };
  const spec = parsed.value;
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
export function respecParallelism(spec: JobSpec, parallelism: ParallelismSpecInput): JobSpec {
  const micro = microBatchSizeOf(spec);
  const input = { ...JSON.parse(JSON.stringify(spec)), parallelism: JSON.parse(JSON.stringify(parallelism)) } as JobSpecInput;
  delete input.microBatchSize;
  const mp = input.parallelism.modelParallel;
  if (mp && mp.microBatches == null && Number.isInteger(spec.batchSize / micro)) mp.microBatches = spec.batchSize / micro;
  if (!mp && micro < spec.batchSize) input.microBatchSize = micro;
  input.deferredBatchNorm = spec.deferredBatchNorm;
  return applyJobSpecDefaults(input);
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
