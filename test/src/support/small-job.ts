// What the fault tests share: a small learnable dataset, a short resnet8 job on it, running it
// to a given step, finding and killing the process of a rank, and waiting for a condition.
import assert from 'node:assert/strict';
import type { S3Config } from '@tensorfleet/infra';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { followJob, type CoordinatorClient, type JobView, type LocalCluster, type ManagedProcess } from '@tensorfleet/cli';
import { until } from './poll';

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
  const held = (await liveRanks(cluster, jobId)).find((x) => x.rank === rank);
  assert.ok(held, `no running worker holds rank ${rank} of ${jobId}`);
  return held;
}

/**
 * The ranks of the job's current run held by worker processes still running, rank order. A
 * worker killed earlier keeps its last job and rank in the registry, alive until its heartbeat
 * expires, and the job's member list may already name the next run's ranks.
 */
export async function liveRanks(cluster: LocalCluster, jobId: string): Promise<{ rank: number; workerId: string; proc: ManagedProcess }[]> {
  const out: { rank: number; workerId: string; proc: ManagedProcess }[] = [];
  for (const w of await cluster.client.listWorkers()) {
    if (!w.alive || w.jobId !== jobId || w.rank === null) continue;
    const proc = cluster.workers.find((p) => p.running && w.id.includes(`-${p.name}-`));
    if (proc) out.push({ rank: Number(w.rank), workerId: w.id, proc });
  }
  return out.sort((a, b) => a.rank - b.rank);
}

/**
 * Makes the cluster's idle fleet exactly `n` live workers: starts workers, or stops idle ones
 * (SIGTERM: a worker unregisters as it exits), then waits until the registry shows `n` alive and
 * idle and no other alive (a SIGKILLed worker stays alive in it until its heartbeat expires).
 */
export async function idleFleetOf(cluster: LocalCluster, n: number, timeoutMs = 60_000): Promise<void> {
  const live = () => cluster.workers.filter((p) => p.running);
  while (live().length < n) cluster.addWorker();
  for (const p of live().slice(n)) await p.stop();
  await waitFor(async () => {
    const alive = (await cluster.client.listWorkers()).filter((w) => w.alive);
    return alive.length === n && alive.every((w) => w.state === 'idle');
  }, timeoutMs, `the registry never showed exactly ${n} alive idle workers (logs: ${cluster.logDir})`);
}

/** until() for a yes/no probe whose errors count as "not yet"; a timeout fails the test with `message`. */
export async function waitFor(probe: () => Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  await until(message, () => probe().catch(() => false), timeoutMs, 100).catch(() => assert.fail(message));
}
