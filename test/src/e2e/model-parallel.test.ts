// Model parallelism end to end, with real processes, Redis, Swift (S3) and ZeroMQ: pipelines of
// ResNet stages, a pipeline × data-parallel hybrid and AlexNet's two columns, each checked
// against the single-process run of the same model on the same batches and micro-batches;
// resume on another plan; export of a model held in parts; a lost stage.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { ControlPlane, parseJobSpec, type JobSpec } from '@tensorfleet/control';
import { ObjectStore, ShardLoader, writeSyntheticDataset, type Batch } from '@tensorfleet/data';
import { createModel, describeModel, initBackend, loadExportedModel, tensorsFromBytes, tf } from '@tensorfleet/models';
import {
  createInProcessWorld, createTrainerFromSpec, latestCheckpoint, loadCheckpoint, modelOptionsFromSpec, type Trainer,
} from '@tensorfleet/training';
import { followJob, serviceEnv, type LocalCluster } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';

type Named = Record<string, Float32Array>;

describe('model parallelism, end to end', { timeout: 40 * 60_000 }, () => {
  let cluster: LocalCluster;
  let store: ObjectStore;
  let redis: Redis;
  let control: ControlPlane;
  const bucket = uniqueBucket('mp');
  const small = 'datasets/synthetic-32';
  const large = 'datasets/synthetic-67';

  const spec = (over: Record<string, unknown> = {}) => ({
    model: { name: 'resnet8' },
    dataset: { bucket, prefix: small },
    parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 2, microBatches: 4 } },
    batchSize: 8,
    steps: 4,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 5e-4 },
    lrSchedule: { type: 'cosine', warmupSteps: 1 },
    augmentation: 'none',
    checkpoint: { intervalSteps: 4, keep: 2 },
    evaluation: { atEnd: false },
    seed: 13,
    ...over,
  });

  const run = async (body: Record<string, unknown>) => {
    const { id } = await cluster.client.submitJob(body);
    const job = await followJob(cluster.client, id, undefined, { timeoutMs: 10 * 60_000 });
    assert.equal(job.state, 'completed', `${JSON.stringify(body.parallelism)}: job ended ${job.state}: ${job.error ?? ''} (logs: ${cluster.logDir})`);
    return job;
  };

  /** Every weight of the job's latest checkpoint (all ranks' parts), by name. */
  const checkpointWeights = async (id: string): Promise<{ weights: Named; parts: string[][]; step: number }> => {
    const ck = await latestCheckpoint(store, bucket, id);
    assert.ok(ck, `job ${id} has no committed checkpoint`);
    const weights = Object.fromEntries(Object.entries(tensorsFromBytes((await loadCheckpoint(store, bucket, ck.key)).weights)).map(([n, t]) => [n, t.data as Float32Array]));
    return { weights, parts: ck.parts.filter((p) => p.kind === 'weights').map((p) => p.tensors ?? []), step: ck.step };
  };

  before(async () => {
    cluster = await startTestCluster({ name: 'model-parallel', workers: 4, workerEnv: { FLEET_COLLECTIVE_TIMEOUT_MS: '8000', FLEET_HEARTBEAT_MS: '500' } });
    store = new ObjectStore(cluster.s3);
    await writeSyntheticDataset(store, { bucket, prefix: small, numClasses: 4, imageSize: 32, trainPerClass: 64, valPerClass: 16, samplesPerShard: 64, seed: 3 });
    await writeSyntheticDataset(store, { bucket, prefix: large, numClasses: 4, imageSize: 67, trainPerClass: 16, valPerClass: 4, samplesPerShard: 32, seed: 4 });
    redis = new Redis(cluster.redisUrl);
    control = new ControlPlane(redis, { prefix: cluster.prefix });
    await initBackend();
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('pipelines of 2 and 3 stages (GPipe and 1F1B), a 2 × 2 hybrid and AlexNet\'s 2 columns equal the single-process run with the same micro-batches', async () => {
    const cases: [string, Record<string, unknown>][] = [
      ['2 stages, gpipe', spec()],
      ['2 stages, 1f1b', spec({ parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 2, microBatches: 4, schedule: '1f1b' } } })],
      ['3 stages, gpipe', spec({ batchSize: 6, parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 3, microBatches: 3 } } })],
      ['3 stages, 1f1b', spec({ batchSize: 6, parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 3, microBatches: 3, schedule: '1f1b' } } })],
      ['2 replicas × 2 stages, 1f1b', spec({ parallelism: { dataParallel: 2, modelParallel: { kind: 'pipeline', stages: 2, microBatches: 2, schedule: '1f1b' } } })],
      ['AlexNet, 2 columns', spec({
        model: { name: 'alexnet_paper', options: { dropout: 0 } }, dataset: { bucket, prefix: large }, batchSize: 4, steps: 3,
        checkpoint: { intervalSteps: 3, keep: 1 }, parallelism: { dataParallel: 1, modelParallel: { kind: 'alexnet-columns', microBatches: 2 } },
      })],
    ];
    for (const [name, body] of cases) {
      const job = await run(body);
      const got = await checkpointWeights(job.id);
      const s = job.spec as JobSpec;
      assert.equal(got.step, s.steps);
      // each rank of replica 0 wrote its own part, and no weight is in two
      const world = s.parallelism.dataParallel * (s.parallelism.modelParallel?.stages ?? 1);
      assert.equal(got.parts.length, world / s.parallelism.dataParallel, `${name}: one weights part per stage`);
      const all = got.parts.flat();
      assert.equal(new Set(all).size, all.length, `${name}: a weight in two parts`);
      const want = await reference(store, s, s.steps!);
      const { rel, moved } = compare(got.weights, want.weights, want.initial);
      assert.ok(moved, `${name}: training did not move the weights`);
      assert.ok(rel < 1e-5, `${name}: relative error ${rel} against the single-process run`);
      const layout = job.layout ?? [];
      assert.equal(layout.length, world);
      assert.ok(layout.every((l) => l.workerId && l.params > 0 && l.weightBytes > 0), `${name}: the layout names every worker: ${JSON.stringify(layout)}`);
    }
  });

  it('a pipeline paused and resumed as 3 stages, and as plain data parallelism, ends like the uninterrupted run; fleet export assembles it whole', async () => {
    const base = spec({ steps: 10, checkpoint: { intervalSteps: 5, keep: 3 }, evaluation: { atEnd: true } });
    const straight = await run(base);
    const want = await checkpointWeights(straight.id);
    for (const [name, parallelism] of [
      ['3 stages', { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 3, schedule: '1f1b' } }],
      ['data parallel', { dataParallel: 1 }],
    ] as const) {
      const { id } = await cluster.client.submitJob(base);
      await followJob(cluster.client, id, undefined, { until: (j) => (j.step ?? 0) >= 2, intervalMs: 50 });
      await cluster.client.jobAction(id, 'pause');
      const paused = await followJob(cluster.client, id, undefined, { timeoutMs: 2 * 60_000 });
      assert.equal(paused.state, 'paused', `${name}: pause ended ${paused.state}: ${paused.error ?? ''}`);
      assert.ok(Number(paused.step) < 10, `${name}: the job finished before it could be paused`);
      const resumed = await cluster.client.jobAction(id, 'resume', { parallelism });
      assert.equal(resumed.layout?.length, parallelism.modelParallel ? 3 : 1, `${name}: the layout of the new plan`);
      const end = await followJob(cluster.client, id, undefined, { timeoutMs: 5 * 60_000 });
      assert.equal(end.state, 'completed', `${name}: resumed job ended ${end.state}: ${end.error ?? ''} (logs: ${cluster.logDir})`);
      const spec2 = end.spec as JobSpec;
      if (!parallelism.modelParallel) assert.equal(spec2.microBatchSize, 2, 'the micro-batch size of the pipeline is kept');
      const got = await checkpointWeights(id);
      const { rel } = compare(got.weights, want.weights);
      assert.ok(rel < 1e-5, `${name}: paused at step ${paused.step} and resumed: relative error ${rel} against the uninterrupted run`);
      assert.ok(Math.abs(Number(end.evalAccuracy) - Number(straight.evalAccuracy)) < 1e-6, `${name}: held-out accuracy ${end.evalAccuracy} vs ${straight.evalAccuracy}`);
    }

    // fleet export puts the stages' parts together: the exported model holds the job's weights
    const out = mkdtempSync(join(tmpdir(), 'tf-export-mp-'));
    execFileSync(process.execPath, [require.resolve('@tensorfleet/cli/bin/fleet.js'), 'export', straight.id, '--out', out, '--coordinator', cluster.client.baseUrl], {
      encoding: 'utf8', env: { ...process.env, ...serviceEnv(cluster.redisUrl, cluster.s3, cluster.prefix) },
    });
    const exported = await loadExportedModel(out);
    const named = Object.fromEntries(exported.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));
    assert.equal(compare(named, want.weights).rel, 0, 'the exported weights are the checkpoint\'s, bit for bit');
    const val = new ShardLoader({ store, bucket, prefix: small, split: 'val', rank: 0, worldSize: 1, seed: 0, batchSize: 32, pipeline: 'none', inputSize: 32, dropLast: false });
    let correct = 0;
    let n = 0;
    for await (const b of val.batches(0)) {
      const pred = tf.tidy(() => (exported.predict(tf.tensor4d(b.images, [b.size, 32, 32, 3])) as tf.Tensor).argMax(-1).dataSync());
      for (let i = 0; i < b.size; i++) correct += Number(pred[i] === b.labels[i]);
      n += b.size;
    }
    assert.ok(Math.abs(correct / n - Number(straight.evalAccuracy)) < 1e-6, `the exported model's held-out accuracy ${correct / n} vs the job's ${straight.evalAccuracy}`);
  });

  it('a stage killed mid-step fails the job on every rank within the deadline, naming the lost worker and rank', async () => {
    const { id } = await cluster.client.submitJob(spec({ steps: 100000, checkpoint: { intervalSteps: 100000 }, recovery: { maxRestarts: 0 } }));
    const running = await followJob(cluster.client, id, undefined, { until: (j) => (j.step ?? 0) >= 3, intervalMs: 100, timeoutMs: 2 * 60_000 });
    assert.equal(running.state, 'running');
    const workers = await cluster.client.listWorkers();
    const victim = workers.find((w) => w.jobId === id && Number(w.rank) === 1);
    const survivor = workers.find((w) => w.jobId === id && Number(w.rank) === 0);
    assert.ok(victim && survivor, 'no workers hold stages 0 and 1');
    const proc = cluster.workers.find((p) => victim.id.includes(`-${p.name}-`));
    assert.ok(proc, `no process for ${victim.id}`);
    const killedAt = Date.now();
    proc.kill('SIGKILL');
    const failed = await followJob(cluster.client, id, undefined, { timeoutMs: 60_000, intervalMs: 100 });
    assert.equal(failed.state, 'failed');
    assert.match(String(failed.error), new RegExp(victim.id), `the error does not name the lost worker: ${failed.error}`);
    assert.match(String(failed.error), /rank 1/, `the error does not name the lost rank: ${failed.error}`);
    // stage 0 learns it from its collective (PEER_LOST or TIMEOUT), names rank 1 and its worker, and is free again
    const events = await control.readEvents(id, '-', 1000);
    const report = events.find((e) => e.type === 'rank-failed' && Number(e.rank) === 0);
    assert.ok(report, 'stage 0 reported no failure');
    assert.match(String(report.message), new RegExp(`(PEER_LOST|TIMEOUT) \\(rank 1\\).*rank 1 = worker ${victim.id}`), String(report.message));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const w = (await cluster.client.listWorkers()).find((x) => x.id === survivor.id);
      if (w?.alive && w.state === 'idle') break;
      assert.ok(Date.now() < deadline, `worker ${survivor.id} (stage 0) did not return to idle`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(Date.now() - killedAt < 8000 + 5000, `stage 0 took ${Date.now() - killedAt} ms to leave, past the 8 s collective deadline`);
    await cluster.client.forgetWorker(victim.id).catch(() => undefined);
  });
});

/** ‖a − b‖ / ‖b‖ over every weight of `want`; and whether training moved it from `initial`. */
function compare(got: Named, want: Named, initial?: Named): { rel: number; moved: boolean } {
  let d2 = 0;
  let n2 = 0;
  let moved = false;
  for (const [name, w] of Object.entries(want)) {
    const g = got[name];
    assert.ok(g, `no weight ${name} in the job's checkpoint`);
    assert.equal(g.length, w.length, name);
    for (let i = 0; i < w.length; i++) {
      d2 += (g[i] - w[i]) ** 2;
      n2 += w[i] ** 2;
      if (initial && Math.abs(initial[name][i] - w[i]) > 1e-4) moved = true;
    }
  }
  assert.equal(Object.keys(got).length, Object.keys(want).length, 'the same weights');
  return { rel: Math.sqrt(d2) / Math.sqrt(n2), moved };
}

/**
 * The single-process run: whole models (one per data-parallel replica, in process), each step
 * on its replica's batch in the job's micro-batches, batch norm deferred as the pipeline does.
 */
async function reference(store: ObjectStore, s: JobSpec, steps: number): Promise<{ weights: Named; initial: Named }> {
  const manifest = JSON.parse((await store.getBuffer(s.dataset.bucket, `${s.dataset.prefix}/manifest.json`)).toString());
  const opts = { ...modelOptionsFromSpec(s, manifest), seed: s.seed };
  const D = s.parallelism.dataParallel;
  const m = s.parallelism.modelParallel?.microBatches ?? 1;
  const single = parseJobSpec({ ...s, parallelism: { dataParallel: D }, microBatchSize: m > 1 ? s.batchSize / m : undefined });
  assert.ok(single.spec, JSON.stringify(single.errors));
  const comms = D > 1 ? createInProcessWorld(D) : [null];
  const inputSize = describeModel(s.model.name, opts).inputSize;
  const loaders = comms.map((_, r) => new ShardLoader({
    store, bucket: s.dataset.bucket, prefix: s.dataset.prefix, split: 'train', rank: r, worldSize: D, seed: s.seed, batchSize: s.batchSize,
    pipeline: 'none', inputSize, dropLast: true,
  }));
  const trainers: Trainer[] = comms.map((comm, r) => createTrainerFromSpec({ ...single.spec!, deferredBatchNorm: s.deferredBatchNorm }, createModel(s.model.name, opts), comm, {
    stepsPerEpoch: loaders[r].batchesPerEpoch(), totalSteps: steps,
  }));
  const named = (model: tf.LayersModel) => Object.fromEntries(model.weights.map((w) => [w.originalName, (w.read().dataSync() as Float32Array).slice()]));
  const initial = named(trainers[0].model);
  const iters = loaders.map((l) => l.batches(0)[Symbol.asyncIterator]());
  for (let i = 0; i < steps; i++) {
    const batches = await Promise.all(iters.map(async (it) => (await it.next()).value as Batch));
    await Promise.all(trainers.map((t, r) => t.step(batches[r])));
  }
  await Promise.all(iters.map((it) => it.return?.(undefined)));
  const weights = named(trainers[0].model);
  trainers.forEach((t) => {
    t.model.dispose();
    t.dispose();
  });
  return { weights, initial };
}
