import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import type { JobView, MetricView } from '../lib/api-client';
import { followJob } from '../cluster/follow-job';
import { LocalCluster } from '../cluster/local-cluster';

export interface DemoOptions {
  /** Worker processes, all in one data-parallel job. Default 2. */
  workers?: number;
  /** Registered model name. Default `resnet8`, a small CIFAR-style ResNet. */
  model?: string;
  /** Epochs over the synthetic training split. Default 4. */
  epochs?: number;
  /** Per-worker batch size. Default 32. */
  batchSize?: number;
  /** Classes of the synthetic dataset. Default 8. */
  numClasses?: number;
  /** Training and held-out images per class. Defaults 192 and 48. */
  trainPerClass?: number;
  valPerClass?: number;
  /** Checkpoint every N steps (0 = only at the end). Default 25. */
  checkpointInterval?: number;
  /**
   * 'pipeline': the ResNet cut into 2 stages (1F1B over 4 micro-batches), workers/2 replicas of
   * it; 'alexnet-columns': alexnet_paper at 67 pixels on its two columns, workers/2 replicas.
   * Default: plain data parallelism over every worker.
   */
  modelParallel?: 'pipeline' | 'alexnet-columns';
  seed?: number;
  logDir?: string;
  log?: (msg: string) => void;
  onJob?: (job: JobView) => void;
}

export interface DemoResult {
  jobId: string;
  job: JobView;
  losses: number[];
  logDir: string;
}

export const DEMO_BUCKET = 'tensorfleet-demo';

/**
 * The first job end to end: private (or configured) Redis and S3, a synthetic dataset in
 * tar shards, a coordinator and N workers as processes, one data-parallel job over HTTP,
 * followed to the end; everything started is stopped again.
 */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const log = opts.log ?? (() => undefined);
  const workers = opts.workers ?? 2;
  if (opts.modelParallel && !['pipeline', 'alexnet-columns'].includes(opts.modelParallel)) throw new Error(`--model-parallel must be pipeline or alexnet-columns, got ${opts.modelParallel}`);
  if (opts.modelParallel && workers % 2 !== 0) throw new Error(`--model-parallel ${opts.modelParallel} puts 2 workers in each replica: give an even --workers (got ${workers})`);
  const cluster = await LocalCluster.start({ workers, logDir: opts.logDir, log, prefix: 'tf' });
  try {
    const store = new ObjectStore(cluster.s3);
    const prefix = `datasets/synthetic-${opts.numClasses ?? 8}`;
    log(`writing a synthetic dataset to s3://${DEMO_BUCKET}/${prefix}`);
    const manifest = await writeSyntheticDataset(store, {
      bucket: DEMO_BUCKET,
      prefix,
      numClasses: opts.numClasses ?? 8,
      imageSize: 32,
      trainPerClass: opts.trainPerClass ?? 192,
      valPerClass: opts.valPerClass ?? 48,
      samplesPerShard: 256,
      seed: opts.seed ?? 7,
    });
    log(`dataset: ${manifest.splits.train.samples} training and ${manifest.splits.val?.samples ?? 0} held-out images in ${manifest.splits.train.shards.length + (manifest.splits.val?.shards.length ?? 0)} shards`);
    const mp = opts.modelParallel;
    const columns = mp === 'alexnet-columns';
    const spec = {
      name: mp ? `demo-${mp}` : 'demo',
      // the smallest input alexnet_paper takes (its 11×11/4 convolution and three pools); the 32-pixel images are resized
      // (He init: from the paper's N(0, 0.01) AlexNet needs epochs of ImageNet before it learns anything)
      model: columns ? { name: opts.model ?? 'alexnet_paper', inputSize: 67, options: { init: 'kaiming' } } : { name: opts.model ?? 'resnet8' },
      dataset: { bucket: DEMO_BUCKET, prefix },
      parallelism: mp
        ? { dataParallel: workers / 2, modelParallel: columns ? { kind: 'alexnet-columns' } : { kind: 'pipeline', stages: 2, microBatches: 4, schedule: '1f1b' } }
        : { dataParallel: workers },
      batchSize: opts.batchSize ?? 32,
      // AlexNet's steps cost ten times resnet8's (its dense layers): fewer of them
      epochs: opts.epochs ?? (columns ? 2 : 4),
      optimizer: { type: 'sgd', lr: columns ? 0.01 : 0.05, momentum: 0.9, weightDecay: 5e-4 },
      lrSchedule: { type: 'cosine', warmupSteps: 10, scaleWithWorldSize: false },
      augmentation: 'small',
      checkpoint: { intervalSteps: opts.checkpointInterval ?? 25, keep: 2 },
      seed: opts.seed ?? 7,
    };
    const { id } = await cluster.client.submitJob(spec);
    const how = mp ? `${mp === 'pipeline' ? 'a 2-stage pipeline' : "AlexNet's 2 columns"} × ${workers / 2} replica${workers === 2 ? '' : 's'}` : `data-parallel over ${workers} workers`;
    log(`submitted job ${id}: ${spec.model.name}, ${how}`);
    const job = await followJob(cluster.client, id, opts.onJob);
    const { entries } = await cluster.client.metrics(id);
    const losses = (entries as MetricView[]).filter((m) => m.kind === 'train').map((m) => Number(m.loss));
    return { jobId: id, job, losses, logDir: cluster.logDir };
  } finally {
    log('stopping the workers, the coordinator and the services started for the demo');
    await cluster.stop();
  }
}
