// What the fault tests share: a small learnable dataset, a short resnet8 job on it, running it
// to a given step, finding and killing the process of a rank, and waiting for a condition.
import assert from 'node:assert/strict';
import type { S3Config } from '@tensorfleet/infra';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { followJob, type CoordinatorClient, type JobView, type LocalCluster, type ManagedProcess } from '@tensorfleet/cli';

export const SYNTHETIC_PREFIX = 'datasets/synthetic';

/** 4 classes of 32×32 patterns: `trainPerClass` × 4 training samples in shards of `samplesPerShard`. */
export async function writeSmallDataset(s3: S3Config, bucket: string, opts: { trainPerClass?: number; samplesPerShard?: number; seed?: number } = {}): Promise<void> {
  await writeSyntheticDataset(new ObjectStore(s3), {
    bucket, prefix: SYNTHETIC_PREFIX, numClasses: 4, imageSize: 32,
    trainPerClass: opts.trainPerClass ?? 64, valPerClass: 8, samplesPerShard: opts.samplesPerShard ?? 32, seed: opts.seed ?? 9,
  });
}

/** resnet8, data parallel over 2, 40 steps, a checkpoint every 4, no evaluation; `over` replaces fields. */
export function smallJobSpec(bucket: string, over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'small',
    model: { name: 'resnet8' },
    dataset: { bucket, prefix: SYNTHETIC_PREFIX },
    parallelism: { dataParallel: 2 },
    batchSize: 16,
    steps: 40,
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
    augmentation: 'small',
    checkpoint: { intervalSteps: 4, keep: 20 },
    evaluation: { atEnd: false },
    seed: 11,
    ...over,
  };
}

/** Follows a job until it runs at `step` or later (and has a checkpoint, unless told not to); fails if it ended. */
export async function runUntilStep(cluster: LocalCluster, id: string, step: number, opts: { checkpoint?: boolean; timeoutMs?: number; client?: CoordinatorClient } = {}): Promise<JobView> {
  const running = await followJob(opts.client ?? cluster.client, id, undefined, {
    until: (j) => j.state === 'running' && (j.step ?? 0) >= step && (opts.checkpoint === false || !!j.lastCheckpoint),
    intervalMs: 100, timeoutMs: opts.timeoutMs ?? 3 * 60_000,
  });
  assert.equal(running.state, 'running', `job ${id} is ${running.state} before step ${step}: ${running.error ?? ''} (logs: ${cluster.logDir})`);
  return running;
}

/** The worker process holding `rank` of the job's current run, and its registry id. */
export async function processOfRank(cluster: LocalCluster, jobId: string, rank: number): Promise<{ workerId: string; proc: ManagedProcess }> {
  // Alive only: a worker killed earlier keeps its last job and rank in the registry.
  const w = (await cluster.client.listWorkers()).find((x) => x.alive && x.jobId === jobId && Number(x.rank) === rank);
  assert.ok(w, `no worker holds rank ${rank} of ${jobId}`);
  const proc = cluster.workers.find((p) => p.running && w.id.includes(`-${p.name}-`));
  assert.ok(proc, `no process for ${w.id}`);
  return { workerId: w.id, proc };
}

export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(message);
}
