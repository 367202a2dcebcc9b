// One process of `fleet bench pipeline` (pipeline-bench.ts): a pipeline stage, an AlexNet
// column, or the single-process baseline. It binds a collective node, prints its address, and
// runs one configuration per JSON line on stdin, answering with one JSON line of measurements.
import { createInterface } from 'node:readline';
import { CollectiveNode } from '@tensorfleet/collective';
import { createModel, initBackend, tf } from '@tensorfleet/models';
import { createLrSchedule } from '../schedule/lr-schedule';
import { Trainer, type TrainBatch } from '../trainer/trainer';
import { ColumnTrainer } from '../parallel/column-trainer';
import { PipelineStageTrainer } from '../parallel/pipeline-trainer';
import { ParallelPlan } from '../parallel/plan';
import { planComms, type PlanTrainer } from '../parallel/plan-trainer';
import { randomBatch } from '../testing/fixtures';
import type { BenchRankConfig, BenchRankResult } from './pipeline-bench';

const optimizer = { momentum: 0.9, weightDecay: 1e-4 };

async function run(node: CollectiveNode, c: BenchRankConfig): Promise<BenchRankResult> {
  const opts = { inputSize: c.inputSize, numClasses: c.numClasses, seed: 1, ...(c.model === 'alexnet_paper' ? { dropout: 0 } : {}) };
  const schedule = () => createLrSchedule({ type: 'constant', lr: 0.01 }, { stepsPerEpoch: 100, totalSteps: 100 });
  const before = tf.memory().numBytes;
  let step: (b: TrainBatch | null) => Promise<{ waitMs: number; computeMs: number; updateMs: number; sentBytes: number }>;
  let dispose: () => void;
  let reads = true;
  // The single-process baseline never joins: run on several processes at once it measures one
  // process's speed while the other cores are busy too, as they are under a pipeline.
  const world = c.plan !== 'single' && c.worldSize > 1 ? await node.join({ runId: c.runId, epoch: 1, rank: c.rank, worldSize: c.worldSize, peers: c.peers, timeoutMs: 120_000 }) : null;
  try {
    if (c.plan === 'single') {
      const trainer = new Trainer({ model: createModel(c.model, opts), optimizer, schedule: schedule(), microBatchSize: c.batch / c.microBatches, deferBatchNormStats: true });
      step = async (b) => {
        const r = await trainer.step(b!);
        return { waitMs: 0, computeMs: r.timings.computeMs, updateMs: r.timings.updateMs, sentBytes: 0 };
      };
      dispose = () => {
        trainer.dispose();
        trainer.model.dispose();
      };
    } else {
      const plan = new ParallelPlan({
        dataParallel: 1,
        modelParallel: c.plan === 'columns'
          ? { kind: 'alexnet-columns', stages: 2, microBatches: c.microBatches }
          : { kind: 'pipeline', stages: c.worldSize, microBatches: c.microBatches, schedule: c.schedule },
      });
      const place = plan.place(c.rank);
      const common = { model: c.model, modelOptions: opts, plan, place, comms: planComms(world, plan, c.rank), optimizer, schedule: schedule(), batchSize: c.batch };
      const t: PlanTrainer = c.plan === 'columns' ? new ColumnTrainer(common) : new PipelineStageTrainer({ ...common, stageSections: c.stageSections! });
      reads = plan.readsData(place);
      step = async (b) => t.step(reads ? b : null).then((r) => r.timings);
      dispose = () => t.dispose();
    }
    const weightBytes = tf.memory().numBytes - before;
    const batch = randomBatch(7, c.batch, [c.inputSize, c.inputSize, 3], c.numClasses);
    for (let i = 0; i < c.warmup; i++) await step(batch);
    // one step under tf.profile for the peak of tensor memory (profiling is not timed)
    const prof = await tf.profile(() => step(batch).then(() => undefined) as unknown as tf.TensorContainer);
    if (world) await world.barrier();
    const times: { stepMs: number; waitMs: number; computeMs: number; updateMs: number; sentBytes: number }[] = [];
    for (let i = 0; i < c.steps; i++) {
      const t0 = performance.now();
      const r = await step(batch);
      times.push({ stepMs: performance.now() - t0, ...r });
    }
    if (world) await world.barrier();
    dispose();
    const mean = (k: keyof (typeof times)[number]) => times.reduce((a, t) => a + t[k], 0) / times.length;
    return { stepMs: mean('stepMs'), waitMs: mean('waitMs'), computeMs: mean('computeMs'), updateMs: mean('updateMs'), sentBytes: mean('sentBytes'), peakBytes: prof.peakBytes - before, weightBytes };
  } finally {
    await world?.close();
  }
}

async function main(): Promise<void> {
  await initBackend();
  const node = await CollectiveNode.listen({ host: '127.0.0.1' });
  const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  out({ ready: true, address: node.address });
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const c = JSON.parse(line) as BenchRankConfig | { exit: true };
    if ('exit' in c) break;
    try {
      out({ result: await run(node, c) });
    } catch (e) {
      out({ error: (e as Error).stack ?? String(e) });
    }
  }
  await node.close();
  process.exit(0);
}

void main();
