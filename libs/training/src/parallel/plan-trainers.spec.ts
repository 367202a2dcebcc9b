// Model-parallel arithmetic without processes: the ranks of a plan are trainers in one process
// sharing an in-process fake Communicator (testing/in-process-comm.ts). The real ZeroMQ path,
// with worker processes, is run by test/src/e2e/model-parallel.test.ts.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createModel, initBackend, minInputSize, tf, type CreateModelOptions } from '@tensorfleet/models';
import type { Communicator } from '@tensorfleet/collective';
import { createLrSchedule } from '../schedule/lr-schedule';
import { Trainer, type TrainBatch } from '../trainer/trainer';
import { createInProcessWorld } from '../testing/in-process-comm';
import { randomBatch, sliceBatch } from '../testing/fixtures';
import { ColumnTrainer } from './column-trainer';
import { pipelineStages } from './layout';
import { PipelineStageTrainer } from './pipeline-trainer';
import { ParallelPlan } from './plan';
import { planComms, type PlanTrainer } from './plan-trainer';
import { modelSections } from '@tensorfleet/models';

// wasm with our kernels: the cpu backend's convolution gradients take seconds per step here.
// Both sides of every comparison run on it, so the comparison is of the arithmetic of the plans.
before(async () => {
  await initBackend({ backend: 'wasm' });
});

const optimizer = { momentum: 0.9, weightDecay: 1e-3 };
const schedule = (replicas: number, batch: number) =>
  createLrSchedule({ type: 'cosine', lr: 0.4, warmupSteps: 1, scaleWithWorldSize: true }, { stepsPerEpoch: 4, totalSteps: 4, worldSize: replicas, baseBatch: batch });

/**
 * ‖a − b‖ / ‖b‖ over every weight the reference has, taken from whichever rank holds it; and
 * how far training moved the reference from its start (so that equal means trained alike).
 */
function compare(ranks: PlanTrainer[], reference: tf.LayersModel[], start: tf.LayersModel): { worst: number; names: number; moved: number } {
  const held = new Map<string, Float32Array>();
  for (const r of ranks) for (const [n, t] of Object.entries(r.part.weightTensors())) held.set(n, t.dataSync() as Float32Array);
  let worst = 0;
  const want = reference[0].weights;
  for (const w of want) {
    const got = held.get(w.originalName);
    assert.ok(got, `no rank holds ${w.originalName}`);
    const ref = w.read().dataSync();
    let d = 0;
    let n = 0;
    for (let i = 0; i < ref.length; i++) {
      d += (got[i] - ref[i]) ** 2;
      n += ref[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12));
  }
  // every reference replica ends identical
  for (const r of reference.slice(1)) r.weights.forEach((w, i) => assert.deepEqual(w.read().dataSync(), want[i].read().dataSync()));
  let moved = 0;
  start.weights.forEach((w, i) => {
    const a = w.read().dataSync();
    const b = want[i].read().dataSync();
    let d = 0;
    for (let j = 0; j < a.length; j++) d = Math.max(d, Math.abs(a[j] - b[j]));
    moved = Math.max(moved, d);
  });
  start.dispose();
  return { worst, names: want.length, moved };
}

/** Reference: `replicas` whole-model Trainers, data-parallel in process, with the same micro-batches and deferred BN. */
function referenceRun(model: string, opts: CreateModelOptions, replicas: number, batch: number, microBatches: number) {
  const comms = replicas > 1 ? createInProcessWorld(replicas) : [null];
  return comms.map((comm) =>
    new Trainer({ model: createModel(model, opts), optimizer, schedule: schedule(replicas, batch), comm, microBatchSize: batch / microBatches, deferBatchNormStats: true }),
  );
}

async function runPlan(ranks: PlanTrainer[], plan: ParallelPlan, batches: TrainBatch[][], steps: number) {
  for (let s = 0; s < steps; s++) {
    await Promise.all(ranks.map((t) => t.step(plan.readsData(t.place) ? batches[s][t.place.replica] : null)));
  }
}

describe('pipeline stages equal the single-process run with the same micro-batches', () => {
  for (const [stages, replicas, schedule_, microBatches] of [
    [2, 1, 'gpipe', 4], [2, 1, '1f1b', 4], [3, 1, '1f1b', 3], [3, 1, 'gpipe', 2], [2, 2, '1f1b', 2],
  ] as const) {
    it(`${replicas} × ${stages} stages, ${schedule_}, ${microBatches} micro-batches: every weight and BN statistic within 1e-5`, async (ctx) => {
      const model = 'resnet8';
      const opts = { inputSize: 16, numClasses: 5, seed: 3 };
      const batch = 12;
      const plan = new ParallelPlan({ dataParallel: replicas, modelParallel: { kind: 'pipeline', stages, microBatches, schedule: schedule_ } });
      const stageSections = pipelineStages(modelSections(model, opts), plan);
      const world = createInProcessWorld(plan.worldSize);
      const ranks = world.map((w, rank) => new PipelineStageTrainer({
        model, modelOptions: opts, plan, place: plan.place(rank), stageSections, comms: planComms(w as Communicator, plan, rank),
        optimizer, schedule: schedule(replicas, batch), batchSize: batch,
      }));
      const reference = referenceRun(model, opts, replicas, batch, microBatches);
      const steps = 3;
      const batches = Array.from({ length: steps }, (_, s) => Array.from({ length: replicas }, (_, r) => randomBatch(100 + 10 * s + r, batch, [16, 16, 3], 5)));
      await runPlan(ranks, plan, batches, steps);
      for (let s = 0; s < steps; s++) await Promise.all(reference.map((t, r) => t.step(batches[s][r])));
      const { worst, names, moved } = compare(ranks, reference.map((t) => t.model), createModel(model, opts));
      assert.ok(names > 40, 'weights and BN statistics compared');
      assert.ok(moved > 1e-2, `training moved the weights (${moved})`);
      assert.ok(worst < 1e-5, `worst relative error ${worst}`);
      ctx.diagnostic(`worst relative error ${worst.toExponential(2)}`);
      [...ranks, ...reference].forEach((t) => t.dispose());
    });
  }
});

describe("AlexNet's two columns equal the single-process alexnet_paper", () => {
  it('2 columns and 2 × 2 columns, with micro-batches: every weight within 1e-5, fc8 bitwise equal on both columns', async (ctx) => {
    const model = 'alexnet_paper';
    const inputSize = minInputSize(model);
    const opts = { inputSize, numClasses: 4, seed: 5, dropout: 0 };
    for (const [replicas, microBatches] of [[1, 1], [2, 2]] as const) {
      const batch = 4;
      const plan = new ParallelPlan({ dataParallel: replicas, modelParallel: { kind: 'alexnet-columns', stages: 2, microBatches } });
      const world = createInProcessWorld(plan.worldSize);
      const ranks = world.map((w, rank) => new ColumnTrainer({
        model, modelOptions: opts, plan, place: plan.place(rank), comms: planComms(w as Communicator, plan, rank),
        optimizer, schedule: schedule(replicas, batch), batchSize: batch,
      }));
      const reference = referenceRun(model, opts, replicas, batch, microBatches);
      const steps = 2;
      const batches = Array.from({ length: steps }, (_, s) => Array.from({ length: replicas }, (_, r) => randomBatch(7 + 10 * s + r, batch, [inputSize, inputSize, 3], 4)));
      await runPlan(ranks, plan, batches, steps);
      for (let s = 0; s < steps; s++) await Promise.all(reference.map((t, r) => t.step(batches[s][r])));
      const { worst, moved } = compare(ranks, reference.map((t) => t.model), createModel(model, opts));
      assert.ok(moved > 1e-3, `training moved the weights (${moved})`);
      assert.ok(worst < 1e-5, `${replicas} × columns: worst relative error ${worst}`);
      ctx.diagnostic(`${replicas} × columns, ${microBatches} micro-batch(es): worst relative error ${worst.toExponential(2)}`);
      const fc8 = ranks.slice(0, 2).map((r) => r.part.weightTensors()['fc8/kernel'].dataSync());
      assert.deepEqual(fc8[1], fc8[0], 'both columns hold the same fc8');
      const written = ranks.map((r) => Object.keys(r.checkpointTensors().weights));
      assert.ok(written[0].includes('fc8/kernel') && !written[1].includes('fc8/kernel'), 'column 0 writes fc8, column 1 does not');
      [...ranks, ...reference].forEach((t) => t.dispose());
    }
  });
});

describe('bad input to a stage', () => {
  it('a batch of the wrong size and labels beyond the classes are INVALID_BATCH errors naming the problem', async () => {
    const model = 'resnet8';
    const opts = { inputSize: 16, numClasses: 5, seed: 3 };
    const plan = new ParallelPlan({ dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 2, microBatches: 2 } });
    const stageSections = pipelineStages(modelSections(model, opts), plan);
    const world = createInProcessWorld(2);
    const [first, last] = world.map((w, rank) => new PipelineStageTrainer({
      model, modelOptions: opts, plan, place: plan.place(rank), stageSections, comms: planComms(w as Communicator, plan, rank),
      optimizer, schedule: schedule(1, 4), batchSize: 4,
    }));
    await assert.rejects(first.step(sliceBatch(randomBatch(1, 6, [16, 16, 3], 5), 0, 3)), /a pipeline step takes 4 single-view samples/);
    const bad = randomBatch(2, 4, [16, 16, 3], 5);
    bad.labels[1] = 9;
    const steps = [first.step(bad), last.step(null)];
    await assert.rejects(steps[1], /label 9 is outside \[0, 5\)/);
    steps[0].catch(() => undefined);
    first.dispose();
    last.dispose();
  });
});
