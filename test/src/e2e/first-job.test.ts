// The first job end to end, with real processes, Redis, Swift (S3) and ZeroMQ: a coordinator
// and two workers train a small ResNet data-parallel on a synthetic dataset.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import { ControlPlane } from '@tensorfleet/control';
import { ObjectStore, ShardLoader, writeSyntheticDataset, type Batch } from '@tensorfleet/data';
import { createModel, initBackend, loadExportedModel, tf, weightsFromBytes } from '@tensorfleet/models';
import { createTrainerFromSpec, latestCheckpoint, listCheckpoints, loadCheckpoint } from '@tensorfleet/training';
import { ApiError, followJob, serviceEnv, type LocalCluster } from '@tensorfleet/cli';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';

describe('first job, end to end', { timeout: 15 * 60_000 }, () => {
  let cluster: LocalCluster;
  let store: ObjectStore;
  let redis: Redis;
  let control: ControlPlane;
  const bucket = uniqueBucket('e2e');
  const prefix = 'datasets/synthetic';
  let trainedJob = '';

  const spec = (over: Record<string, unknown> = {}) => ({
    name: 'e2e',
    model: { name: 'resnet8' },
    dataset: { bucket, prefix },
    parallelism: { dataParallel: 2 },
    batchSize: 16,
    epochs: 3,
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
    lrSchedule: { type: 'cosine', warmupSteps: 5, scaleWithWorldSize: false },
    augmentation: 'small',
    checkpoint: { intervalSteps: 10, keep: 2 },
    seed: 11,
    ...over,
  });

  before(async () => {
    cluster = await startTestCluster({ name: 'first-job', workers: 2 });
    store = new ObjectStore(cluster.s3);
    await writeSyntheticDataset(store, { bucket, prefix, numClasses: 4, imageSize: 32, trainPerClass: 96, valPerClass: 24, samplesPerShard: 64, seed: 3 });
    redis = new Redis(cluster.redisUrl);
    control = new ControlPlane(redis, { prefix: cluster.prefix });
  });

  after(async () => {
    redis?.disconnect();
    await cluster?.stop();
  });

  it('rejects malformed jobs with a 400 naming the field, and queues nothing', async () => {
    const { model: _m, ...noModel } = spec();
    const cases: [unknown, string][] = [
      [noModel, 'model'],
      [spec({ batchSize: -1 }), 'batchSize'],
      [spec({ dataset: { bucket, prefix: 'datasets/does-not-exist' } }), 'dataset'],
      [spec({ microBatchSize: 17 }), 'microBatchSize'],
      [spec({ evaluation: { tenCrop: true } }), 'evaluation.tenCrop'],
    ];
    for (const [body, field] of cases) {
      await assert.rejects(cluster.client.submitJob(body), (e: unknown) => {
        assert.ok(e instanceof ApiError, `expected an API error, got ${e}`);
        assert.equal(e.status, 400);
        assert.match(JSON.stringify(e.body), new RegExp(field), `the 400 for ${field} does not name it: ${JSON.stringify(e.body)}`);
        return true;
      });
    }
    assert.deepEqual(await cluster.client.listJobs(), []);
  });

  it('the workers register the backend they selected: onednn where its addon is built, else wasm', async () => {
    const built = existsSync(resolve(__dirname, '../../../libs/models/native/build/Release/fleet_dnnl.node'));
    const deadline = Date.now() + 60_000;
    let workers = await cluster.client.listWorkers();
    while (workers.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      workers = await cluster.client.listWorkers();
    }
    assert.deepEqual(workers.map((w) => [w.backend, w.device]), [0, 1].map(() => [built ? 'onednn' : 'wasm', 'cpu']));
  });

  it('trains data-parallel over two workers: completed, loss falls, identical replicas', async () => {
    // Checkpoints and held-out evaluation at every epoch's end, as a user without a step interval gets.
    const { id } = await cluster.client.submitJob(spec({ checkpoint: { intervalSteps: 0, keep: 5 }, evaluation: { everyEpochs: 1 } }));
    trainedJob = id;
    const job = await followJob(cluster.client, id, undefined, { timeoutMs: 8 * 60_000 });
    assert.equal(job.state, 'completed', `job ended ${job.state}: ${job.error ?? ''} (logs: ${cluster.logDir})`);

    const { entries } = await cluster.client.metrics(id);
    const losses = entries.filter((m) => m.kind === 'train').map((m) => Number(m.loss));
    assert.equal(losses.length, job.totalSteps);
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    const first = mean(losses.slice(0, 5));
    const last = mean(losses.slice(-5));
    assert.ok(last < first * 0.8, `loss did not fall: first steps ${first.toFixed(3)}, last steps ${last.toFixed(3)}`);
    assert.ok(Number(job.evalAccuracy) > 0.4, `held-out accuracy ${job.evalAccuracy} is not above chance (0.25)`);
    const perEpoch = Number(job.totalSteps) / 3;
    const evals = entries.filter((m) => m.kind === 'eval');
    assert.deepEqual(evals.map((m) => Number(m.step)), [perEpoch, 2 * perEpoch, 3 * perEpoch], 'one held-out evaluation per epoch (the last one is the final evaluation)');
    assert.ok(evals.every((m) => Number(m.accuracy) >= 0 && Number(m.accuracy) <= 1));
    const ckpts = await listCheckpoints(store, bucket, id);
    assert.deepEqual(ckpts.map((c) => c.step).sort((a, b) => a - b), [perEpoch, 2 * perEpoch, 3 * perEpoch], 'a checkpoint at every epoch end');

    const done = (await control.readEvents(id, '-', 1000)).filter((e) => e.type === 'rank-completed');
    assert.deepEqual(done.map((e) => Number(e.rank)).sort(), [0, 1]);
    assert.equal(done[0].weightsHash, done[1].weightsHash, 'the two replicas ended with different weights');
    assert.match(String(done[0].weightsHash), /^[0-9a-f]{64}$/);
  });

  it('exports the trained job as a layers model that predicts held-out images (fleet export, fleet predict)', async () => {
    assert.ok(trainedJob, 'the training test did not run');
    const out = mkdtempSync(join(tmpdir(), 'tf-export-'));
    const fleet = (...args: string[]) => execFileSync(process.execPath, [require.resolve('@tensorfleet/cli/bin/fleet.js'), ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...serviceEnv(cluster.redisUrl, cluster.s3, cluster.prefix) },
    });
    assert.match(fleet('export', trainedJob, '--out', out, '--coordinator', cluster.client.baseUrl), /exported resnet8/);
    await initBackend();
    const model = await loadExportedModel(out);
    const val = new ShardLoader({ store, bucket, prefix, split: 'val', rank: 0, worldSize: 1, seed: 0, batchSize: 32, pipeline: 'none', inputSize: 32, dropLast: false });
    let correct = 0;
    let n = 0;
    for await (const b of val.batches(0)) {
      const logits = model.predict(tf.tensor4d(b.images, [b.size, 32, 32, 3])) as any;
      const pred = logits.argMax(-1).dataSync();
      for (let i = 0; i < b.size; i++) correct += Number(pred[i] === b.labels[i]);
      n += b.size;
      logits.dispose();
    }
    const job = await cluster.client.getJob(trainedJob);
    assert.ok(Math.abs(correct / n - Number(job.evalAccuracy)) < 0.02, `exported model accuracy ${correct / n} vs the job's ${job.evalAccuracy}`);
    // `fleet predict` on an image file prints the top 5 (here all 4 classes, so the probabilities sum to 1).
    const png = join(out, 'image.png');
    writeFileSync(png, await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 200, g: 30, b: 30 } } }).png().toBuffer());
    const top = JSON.parse(fleet('predict', out, png, '--json'));
    assert.equal(top.length, 4);
    const total = top.reduce((sum: number, t: any) => sum + t.probability, 0);
    assert.ok(Math.abs(total - 1) < 1e-4, `probabilities over all classes sum to ${total}`);
    assert.ok(top.every((t: any, i: number) => i === 0 || top[i - 1].probability >= t.probability), 'not sorted by probability');
  });

  it('equals a single-process run on the combined batch (checks the all-reduce and micro-batch arithmetic)', async () => {
    const steps = 4;
    const s = spec({
      name: 'equivalence',
      // Each rank accumulates gradients over passes of 6, 5 and 5 images.
      microBatchSize: 6,
      steps,
      epochs: undefined,
      augmentation: 'none',
      freezeBatchNorm: true,
      lrSchedule: { type: 'constant', scaleWithWorldSize: false },
      checkpoint: { intervalSteps: steps, keep: 1 },
      evaluation: { atEnd: false },
    });
    const { id } = await cluster.client.submitJob(s);
    const job = await followJob(cluster.client, id, undefined, { timeoutMs: 5 * 60_000 });
    assert.equal(job.state, 'completed', `job ended ${job.state}: ${job.error ?? ''} (logs: ${cluster.logDir})`);
    const ckpt = await latestCheckpoint(store, bucket, id);
    assert.ok(ckpt, 'no committed checkpoint');
    assert.equal(ckpt.step, steps);
    const distributed = await loadCheckpoint(store, bucket, ckpt.key);

    // The reference: one process, same backend, same seeded model, each step one pass over
    // the concatenation of the two ranks' batches.
    await initBackend();
    const model = createModel('resnet8', { numClasses: 4, inputSize: 32, seed: s.seed });
    const loaders = [0, 1].map((rank) => new ShardLoader({
      store, bucket, prefix, split: 'train', rank, worldSize: 2, seed: s.seed, batchSize: s.batchSize,
      pipeline: 'none', inputSize: 32, dropLast: true,
    }));
    const iters = loaders.map((l) => l.batches(0)[Symbol.asyncIterator]());
    const trainer = createTrainerFromSpec({ ...s, microBatchSize: undefined } as any, model, null, { stepsPerEpoch: loaders[0].batchesPerEpoch(), totalSteps: steps });
    for (let i = 0; i < steps; i++) {
      const parts = await Promise.all(iters.map(async (it) => (await it.next()).value as Batch));
      await trainer.step(concat(parts));
    }
    await Promise.all(iters.map((it) => it.return?.(undefined)));
    const reference = model.weights.map((w) => w.read().dataSync() as Float32Array);

    const replica = createModel('resnet8', { numClasses: 4, inputSize: 32, seed: 999 });
    weightsFromBytes(replica, distributed.weights);
    const got = replica.weights.map((w) => w.read().dataSync() as Float32Array);
    assert.equal(got.length, reference.length);
    // Relative error over all weights, ||a - b|| / ||b||, and the largest elementwise
    // difference relative to the largest weight. (Per tensor is ill-conditioned: BN betas
    // start at zero and are still near zero after four steps.)
    let diff2 = 0;
    let norm2 = 0;
    let maxAbs = 0;
    let maxRef = 0;
    for (let i = 0; i < got.length; i++) {
      for (let j = 0; j < got[i].length; j++) {
        const d = got[i][j] - reference[i][j];
        diff2 += d * d;
        norm2 += reference[i][j] * reference[i][j];
        maxAbs = Math.max(maxAbs, Math.abs(d));
        maxRef = Math.max(maxRef, Math.abs(reference[i][j]));
      }
    }
    const rel = Math.sqrt(diff2) / Math.sqrt(norm2);
    assert.ok(rel < 1e-5, `data-parallel weights differ from the single-process run: relative error ${rel}`);
    assert.ok(maxAbs / maxRef < 1e-5, `largest elementwise difference ${maxAbs} (relative to the largest weight ${maxAbs / maxRef})`);
    // And the run really moved the weights, so the comparison above means something.
    const init = createModel('resnet8', { numClasses: 4, inputSize: 32, seed: s.seed }).weights.map((w) => w.read().dataSync() as Float32Array);
    const moved = init.some((w, i) => w.some((v, j) => Math.abs(v - reference[i][j]) > 1e-4));
    assert.ok(moved, 'four steps did not change the weights');
  });
});

function concat(parts: Batch[]): Batch {
  const size = parts.reduce((s, p) => s + p.size, 0);
  const images = new Float32Array(parts.reduce((s, p) => s + p.images.length, 0));
  const labels = new Int32Array(size);
  let io = 0;
  let lo = 0;
  for (const p of parts) {
    images.set(p.images, io);
    labels.set(p.labels, lo);
    io += p.images.length;
    lo += p.labels.length;
  }
  return { images, labels, size, keys: parts.flatMap((p) => p.keys), cursor: parts[0].cursor };
}
