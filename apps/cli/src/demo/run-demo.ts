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
    const spec = {
      name: 'demo',
      model: { name: opts.model ?? 'resnet8' },
      dataset: { bucket: DEMO_BUCKET, prefix },
      parallelism: { dataParallel: workers },
      batchSize: opts.batchSize ?? 32,
      epochs: opts.epochs ?? 4,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
      lrSchedule: { type: 'cosine', warmupSteps: 10, scaleWithWorldSize: false },
      augmentation: 'small',
      checkpoint: { intervalSteps: opts.checkpointInterval ?? 25, keep: 2 },
      seed: opts.seed ?? 7,
    };
    const { id } = await cluster.client.submitJob(spec);
    log(`submitted job ${id}: ${spec.model.name}, data-parallel over ${workers} workers`);
    const job = await followJob(cluster.client, id, opts.onJob);
    const { entries } = await cluster.client.metrics(id);
    const losses = (entries as MetricView[]).filter((m) => m.kind === 'train').map((m) => Number(m.loss));
    return { jobId: id, job, losses, logDir: cluster.logDir };
  } finally {
    log('stopping the workers, the coordinator and the services started for the demo');
    await cluster.stop();
  }
}
