import type { tf } from '@tensorfleet/models';
import type { JobSpec } from '@tensorfleet/control';
import type { DatasetManifest } from '@tensorfleet/data';
import { TrainingError } from './errors';
import { createLrSchedule } from './schedule/lr-schedule';
import { Trainer } from './trainer/trainer';
import { TrainerComm } from './trainer/comm';

/** The job-spec fields the trainer reads. */
export type TrainerJobSpec = Pick<JobSpec, 'optimizer' | 'lrSchedule' | 'freezeBatchNorm' | 'wire' | 'batchSize' | 'microBatchSize' | 'epochs' | 'steps'> & Partial<Pick<JobSpec, 'deferredBatchNorm'>>;

export interface TrainerFromSpecOptions {
  /** Optimizer steps per epoch on each rank (from the loader: floor(rank samples / batchSize)). */
  stepsPerEpoch: number;
  /** Steps of the whole run. Default: spec.steps, else spec.epochs × stepsPerEpoch. */
  totalSteps?: number;
  /** Gradient bucket size for the all-reduce. Default: the communicator's. */
  bucketBytes?: number;
  /** Batch size the spec's lr refers to under the linear scaling rule. Default 256 (Goyal et al. 2017). */
  referenceBatch?: number;
  /**
   * Elastic runs: the replicas and per-replica batch the schedule is computed for (the spec's,
   * whatever the run's size, so that the lr does not change with it), and the images per pass.
   * Default: the communicator's world size, spec.batchSize and spec.microBatchSize.
   */
  elastic?: { scheduleWorldSize: number; microBatchSize: number };
}

/**
 * Builds the Trainer a job spec describes: SGD (momentum, weight decay, nesterov), the LR
 * schedule over `steps` (or `epochs × stepsPerEpoch`) with warmup and the linear scaling
 * rule over the communicator's world size, freezeBatchNorm, micro-batches (with deferred
 * batch-norm statistics when the spec says so) and the gradient wire format.
 */
export function createTrainerFromSpec(
  spec: TrainerJobSpec,
  model: tf.LayersModel,
  comm: TrainerComm | null,
  opts: TrainerFromSpecOptions,
): Trainer {
  if (spec.optimizer.type !== 'sgd') {
    throw new TrainingError('INVALID_OPTIONS', `optimizer.type "${String(spec.optimizer.type)}" is not supported: only "sgd"`);
  }
  const totalSteps = opts.totalSteps ?? spec.steps ?? (spec.epochs !== undefined ? spec.epochs * opts.stepsPerEpoch : undefined);
  if (totalSteps === undefined) throw new TrainingError('INVALID_OPTIONS', 'the job spec needs epochs or steps');
  const s = spec.lrSchedule;
  const schedule = createLrSchedule(
    {
      type: s.type,
      lr: spec.optimizer.lr,
      warmupSteps: s.warmupSteps,
      stepSize: s.stepSize,
      milestones: s.milestones,
      gamma: s.gamma,
      patience: s.patience,
      scaleWithWorldSize: s.scaleWithWorldSize,
    },
    { stepsPerEpoch: opts.stepsPerEpoch, totalSteps, worldSize: opts.elastic?.scheduleWorldSize ?? comm?.worldSize ?? 1, baseBatch: spec.batchSize, referenceBatch: opts.referenceBatch },
  );
  return new Trainer({
    model,
    optimizer: { momentum: spec.optimizer.momentum, weightDecay: spec.optimizer.weightDecay, nesterov: spec.optimizer.nesterov },
    schedule,
    comm,
    freezeBatchNorm: spec.freezeBatchNorm,
    wire: spec.wire,
    bucketBytes: opts.bucketBytes,
    microBatchSize: opts.elastic?.microBatchSize ?? spec.microBatchSize,
    deferBatchNormStats: spec.deferredBatchNorm ?? false,
  });
}

/**
 * createModel's options for the model a job trains: the spec's options, sized by the spec's
 * numClasses and inputSize, else by the dataset's classes and image size. The worker that trains
 * and `fleet export` that rebuilds the model both use it, so they build the same architecture.
 */
export function modelOptionsFromSpec(
  spec: Pick<JobSpec, 'model'>,
  manifest: Pick<DatasetManifest, 'classes' | 'imageSize'>,
): Record<string, unknown> & { numClasses: number; inputSize: number | undefined } {
  return {
    ...(spec.model.options ?? {}),
    numClasses: spec.model.numClasses ?? manifest.classes.length,
    inputSize: spec.model.inputSize ?? manifest.imageSize?.[0],
  };
}
