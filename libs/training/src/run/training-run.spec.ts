// The run loop with in-process communicators (testing/in-process-comm.ts) and a real S3 (the
// test run's Swift): every rank of a plan is a runTraining call in this process. The same loop
// over ZeroMQ and worker processes is test/src/e2e/model-parallel.test.ts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJobSpec, type JobSpec, type MetricEntry } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { initBackend, tensorsFromBytes } from '@tensorfleet/models';
import { testId, testServices } from '@tensorfleet/infra';
import { latestCheckpoint, listCheckpoints, loadCheckpoint } from '../checkpoint/checkpoint';
import { createInProcessWorld } from '../testing/in-process-comm';
import { ParallelPlan } from '../parallel/plan';
import { runTraining, type RunOutcome, type StopRequest } from './training-run';
import { SurvivorMemory } from './survivor-state';

let store: ObjectStore;
let bucket: string;
const prefix = 'ds';

before(async () => {
  await initBackend({ backend: 'wasm' });
  const services = await testServices();
  store = new ObjectStore(services.s3);
  bucket = testId('training-run');
  await writeSyntheticDataset(store, { bucket, prefix, numClasses: 4, imageSize: 16, trainPerClass: 24, valPerClass: 6, samplesPerShard: 48, seed: 2 });
});

after(async () => {
  await store?.removeAll(bucket);
});

function spec(over: Record<string, unknown>): JobSpec {
  const r = parseJobSpec({
    model: { name: 'resnet8', inputSize: 16 }, dataset: { bucket, prefix }, batchSize: 8, steps: 6,
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }, lrSchedule: { type: 'cosine', warmupSteps: 1 },
    augmentation: 'none', checkpoint: { intervalSteps: 3, keep: 5 }, evaluation: { atEnd: true }, seed: 4, ...over,
  });
  assert.ok(r.spec, JSON.stringify(r.errors));
  return r.spec;
}

interface Recorded {
  outcomes: RunOutcome[];
  metrics: MetricEntry[];
  checkpoints: { key: string; step: number }[];
  layout: unknown;
  started: number[];
  /** Where each rank's state came from (rank order). */
  from: string[];
  /** Sample keys of each step, all ranks together (samplesSeen). */
  samples: Map<number, string[]>;
}

/** Every rank of `s`'s plan as a runTraining call in this process. */
async function runAll(
  jobId: string, s: JobSpec, resume?: { checkpointKey: string; step: number }, stopAt?: { step: number; request: StopRequest }, worldSize?: number,
  /** Each rank's process memory (survivor-state.ts), and the restart's memory hint. */
  m?: { memories: SurvivorMemory[]; memory?: { step: number } },
): Promise<Recorded> {
  const plan = new ParallelPlan(worldSize ? { ...s.parallelism, dataParallel: worldSize } : s.parallelism);
  const world = plan.worldSize > 1 ? createInProcessWorld(plan.worldSize) : [null];
  const rec: Recorded = { outcomes: [], metrics: [], checkpoints: [], layout: null, started: [], from: [], samples: new Map() };
  let step = 0;
  rec.outcomes = await Promise.all(world.map((comm, rank) => runTraining({
    store,
    joinWorld: async () => comm,
    log: () => undefined,
    ...(m ? { memory: m.memories[rank] } : {}),
    samplesSeen: (e) => void rec.samples.set(e.step, [...(rec.samples.get(e.step) ?? []), ...e.keys]),
    stopRequested: () => (stopAt && step >= stopAt.step && rank === plan.worldSize - 1 ? stopAt.request : null),
    reporter: {
      started: async (st, from) => {
        rec.started.push(st);
        rec.from[rank] = from;
      },
      checkpointed: async (key, st) => void rec.checkpoints.push({ key, step: st }),
      metric: async (m) => {
        rec.metrics.push(m);
        if (m.kind === 'train') step = m.step;
      },
      updateJob: async (patch) => void (rec.layout = patch.layout),
    },
  }, { jobId, runId: `${jobId}.1`, membershipEpoch: 1, rank, worldSize: plan.worldSize, spec: s, resume, ...(m?.memory ? { memory: m.memory } : {}), workers: world.map((_, r) => `w${r}`) })));
  return rec;
}

/** Largest over tensors of ‖got − want‖ / ‖want‖. */
function worstRelativeError(got: Record<string, Float32Array>, want: Record<string, Float32Array>): number {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  let worst = 0;
  for (const [n, w] of Object.entries(want)) {
    let d = 0;
    let s = 0;
    for (let i = 0; i < w.length; i++) {
      d += (got[n][i] - w[i]) ** 2;
      s += w[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(d) / Math.max(Math.sqrt(s), 1e-12));
  }
  return worst;
}

async function finalWeights(jobId: string): Promise<Record<string, Float32Array>> {
  const ck = await latestCheckpoint(store, bucket, jobId);
  assert.ok(ck, `no checkpoint for ${jobId}`);
  return Object.fromEntries(Object.entries(tensorsFromBytes((await loadCheckpoint(store, bucket, ck.key)).weights)).map(([n, t]) => [n, t.data as Float32Array]));
}

describe('runTraining over any plan, in process', () => {
  const pipeline = { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 2, microBatches: 4, schedule: '1f1b' } };

  it('a 2-stage pipeline: metrics from the last stage, a checkpoint part per stage committed by one manifest, the layout, the held-out evaluation', async () => {
    const job = testId('pipe');
    const r = await runAll(job, spec({ parallelism: pipeline }));
    assert.deepEqual(r.outcomes.map((o) => o.status), ['completed', 'completed']);
    const train = r.metrics.filter((m) => m.kind === 'train');
    assert.deepEqual(train.map((m) => m.step), [1, 2, 3, 4, 5, 6]);
    assert.ok(train.every((m) => Number.isFinite(m.loss) && m.loss > 0), 'the loss comes from the last stage to rank 0');
    assert.equal(r.metrics.filter((m) => m.kind === 'eval').length, 1);
    assert.deepEqual(r.checkpoints.map((c) => c.step), [3, 6]);
    const ck = await listCheckpoints(store, bucket, job);
    // <kind>-r<rank>-<attempt tag>.bin: a half-written attempt never collides with a committed checkpoint
    const files = ck[ck.length - 1].parts.map((p) => p.file.replace(/-[0-9a-f]{8}(?=\.)/, '')).sort();
    assert.deepEqual(files, ['optimizer-r0.bin', 'optimizer-r1.bin', 'state.json', 'weights-r0.bin', 'weights-r1.bin']);
    const [w0, w1] = ['weights-r0-', 'weights-r1-'].map((f) => ck[ck.length - 1].parts.find((p) => p.file.startsWith(f))!.tensors!);
    assert.ok(w0.includes('conv1/kernel') && !w0.includes('fc/kernel') && w1.includes('fc/kernel'), 'each stage writes its own weights');
    assert.equal(w0.filter((n) => w1.includes(n)).length, 0, 'no weight in two parts');
    const layout = r.layout as { rank: number; stage: number; workerId: string; params: number; sections: string[] }[];
    assert.deepEqual(layout.map((l) => [l.rank, l.stage, l.workerId]), [[0, 0, 'w0'], [1, 1, 'w1']]);
    assert.ok(layout.every((l) => l.params > 0));
  });

  it('resumed as 3 stages, and as plain data parallelism, a paused pipeline ends with the weights of the uninterrupted run', async () => {
    const straight = testId('straight');
    await runAll(straight, spec({ parallelism: pipeline }));
    const want = await finalWeights(straight);
    for (const [name, next] of [
      ['3 stages', { parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 3, microBatches: 4, schedule: 'gpipe' } } }],
      ['data parallel', { parallelism: { dataParallel: 1 }, microBatchSize: 2, deferredBatchNorm: true }],
    ] as const) {
      const job = testId('reshaped');
      const first = await runAll(job, spec({ parallelism: pipeline }), undefined, { step: 2, request: 'pause' });
      assert.deepEqual(first.outcomes.map((o) => o.status), ['paused', 'paused']);
      const at = first.checkpoints[first.checkpoints.length - 1];
      assert.ok(at.step >= 2 && at.step < 6, `paused at step ${at.step}`);
      const second = await runAll(job, spec(next), { checkpointKey: at.key, step: at.step });
      assert.ok(second.outcomes.every((o) => o.status === 'completed'));
      assert.deepEqual(second.started, second.outcomes.map(() => at.step), 'every rank resumed at the paused step');
      const got = await finalWeights(job);
      assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
      let worst = 0;
      for (const [n, w] of Object.entries(want)) {
        let d = 0;
        let s = 0;
        for (let i = 0; i < w.length; i++) {
          d += (got[n][i] - w[i]) ** 2;
          s += w[i] ** 2;
        }
        worst = Math.max(worst, Math.sqrt(d) / Math.max(Math.sqrt(s), 1e-12));
      }
      assert.ok(worst < 1e-5, `${name}: resumed run vs uninterrupted: worst relative error ${worst}`);
    }
  });

  it('AlexNet columns: column 0 writes fc8, both columns write their own layers', async () => {
    const job = testId('cols');
    const r = await runAll(job, spec({
      model: { name: 'alexnet_paper', inputSize: 67, options: { dropout: 0 } }, batchSize: 4, steps: 2, checkpoint: { intervalSteps: 2 }, evaluation: { atEnd: false },
      parallelism: { dataParallel: 1, modelParallel: { kind: 'alexnet-columns' } },
    }));
    assert.deepEqual(r.outcomes.map((o) => o.status), ['completed', 'completed']);
    const ck = (await listCheckpoints(store, bucket, job)).pop()!;
    const names = (f: string) => ck.parts.find((p) => p.file.startsWith(f.replace('.bin', '-')))!.tensors!;
    assert.ok(names('weights-r0.bin').includes('fc8/kernel') && !names('weights-r1.bin').includes('fc8/kernel'));
    assert.ok(names('weights-r0.bin').every((n) => !n.startsWith('col1_')) && names('weights-r1.bin').every((n) => n.startsWith('col1_')));
  });

  it('elastic (1..2 replicas, global batch 16): 2 → 1 → 2 replicas ends within 1e-5 of the uninterrupted run, each step on the same samples, each epoch once', async (t) => {
    // 96 samples, global batch 16: 6 steps an epoch; 9 steps cross into epoch 1. Frozen batch
    // norm: per-replica BN statistics would differ with the split (see README, elastic recovery).
    const s = spec({ parallelism: { dataParallel: 2 }, recovery: { minDataParallel: 1, maxDataParallel: 2 }, steps: 9, freezeBatchNorm: true, augmentation: 'small', evaluation: { atEnd: false } });
    const straight = testId('el-straight');
    const st = await runAll(straight, s);
    const want = await finalWeights(straight);

    const job = testId('el-resized');
    const a = await runAll(job, s, undefined, { step: 2, request: 'pause' });
    const atA = a.checkpoints[a.checkpoints.length - 1];
    const b = await runAll(job, s, { checkpointKey: atA.key, step: atA.step }, { step: atA.step + 3, request: 'pause' }, 1);
    const atB = b.checkpoints[b.checkpoints.length - 1];
    assert.ok(atB.step > atA.step && atB.step < 9, `the 1-replica run paused at ${atB.step}`);
    const c = await runAll(job, s, { checkpointKey: atB.key, step: atB.step });
    assert.deepEqual(c.outcomes.map((o) => o.status), ['completed', 'completed']);
    const err = worstRelativeError(await finalWeights(job), want);
    t.diagnostic(`2 → 1 → 2 replicas vs 2 throughout: worst relative error ${err.toExponential(2)}`);
    assert.ok(err < 1e-5, `2 → 1 → 2 replicas vs 2 throughout: worst relative error ${err}`);

    // The resized run trained each step on the uninterrupted run's samples, in the same order.
    const resized = new Map([...a.samples, ...b.samples, ...c.samples]);
    assert.deepEqual([...resized.keys()].sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const [stepNo, keys] of st.samples) assert.deepEqual(resized.get(stepNo), keys, `step ${stepNo}`);
    const epoch0 = [1, 2, 3, 4, 5, 6].flatMap((k) => resized.get(k)!);
    assert.equal(epoch0.length, 96);
    assert.equal(new Set(epoch0).size, 96, 'epoch 0: every sample once');
    assert.equal(new Set([7, 8, 9].flatMap((k) => resized.get(k)!)).size, 48);

    // Where the size does not change (paused and resumed on 2), bit-identical.
    const same = testId('el-same');
    const p = await runAll(same, s, undefined, { step: 4, request: 'pause' });
    const at = p.checkpoints[p.checkpoints.length - 1];
    const q = await runAll(same, s, { checkpointKey: at.key, step: at.step });
    assert.equal(q.outcomes[0].weightsHash, st.outcomes[0].weightsHash);
  });

  it('memory resume: survivors stopped by a cancel hold their last completed step; the restart resumes from it, not the older checkpoint, and ends bit-identical', async () => {
    // Batch norm in training mode (its statistics averaged over the replicas), rank-order data.
    const s = spec({ parallelism: { dataParallel: 2 }, steps: 8, checkpoint: { intervalSteps: 3, keep: 5, background: false }, evaluation: { atEnd: false } });
    const straight = await runAll(testId('mem-straight'), s);

    const job = testId('mem');
    const memories = [new SurvivorMemory(), new SurvivorMemory()];
    const a = await runAll(job, s, undefined, { step: 4, request: 'cancel' }, undefined, { memories });
    assert.deepEqual(a.outcomes.map((o) => o.status), ['cancelled', 'cancelled']);
    const stoppedAt = a.outcomes[0].step;
    assert.deepEqual(memories.map((x) => x.heldStep(job)), [stoppedAt, stoppedAt], 'every survivor holds the step it stopped at');
    const ck = a.checkpoints[a.checkpoints.length - 1];
    assert.ok(ck.step < stoppedAt, `checkpoint ${ck.step} is older than the held step ${stoppedAt}`);

    const b = await runAll(job, s, { checkpointKey: ck.key, step: ck.step }, undefined, undefined, { memories, memory: { step: stoppedAt } });
    assert.deepEqual(b.from, ['memory', 'memory']);
    assert.deepEqual(b.started, [stoppedAt, stoppedAt], 'resumed at the survivors\' last completed step: nothing lost');
    assert.deepEqual(b.outcomes.map((o) => o.status), ['completed', 'completed']);
    assert.equal(b.outcomes[0].weightsHash, straight.outcomes[0].weightsHash, 'bit-identical to the uninterrupted run');
    const resumed = new Map([...a.samples, ...b.samples]);
    for (const [stepNo, keys] of straight.samples) assert.deepEqual(resumed.get(stepNo), keys, `step ${stepNo}`);
    assert.deepEqual(memories.map((x) => x.heldStep(job)), [undefined, undefined], 'a run that started dropped what it held');

    // Nothing held (another process, or a state taken already): the checkpoint.
    const c = await runAll(job, s, { checkpointKey: ck.key, step: ck.step }, undefined, undefined, { memories, memory: { step: stoppedAt } });
    assert.deepEqual(c.from, ['checkpoint', 'checkpoint']);
    assert.deepEqual(c.started, [ck.step, ck.step]);
  });

  it('elastic memory resume: rank 1 of 2 survives and goes on alone from its memory, within 1e-5 of the uninterrupted run', async (t) => {
    const s = spec({ parallelism: { dataParallel: 2 }, recovery: { minDataParallel: 1, maxDataParallel: 2 }, steps: 9, freezeBatchNorm: true, augmentation: 'small', checkpoint: { intervalSteps: 4, keep: 5, background: false }, evaluation: { atEnd: false } });
    const straightId = testId('emem-straight');
    const straight = await runAll(straightId, s);
    const want = await finalWeights(straightId);
    const job = testId('emem');
    const memories = [new SurvivorMemory(), new SurvivorMemory()];
    const a = await runAll(job, s, undefined, { step: 5, request: 'cancel' }, undefined, { memories });
    const held = memories[1].heldStep(job)!;
    assert.ok(held >= 5, `rank 1 holds step ${held}`);
    const ck = a.checkpoints[a.checkpoints.length - 1];
    const b = await runAll(job, s, { checkpointKey: ck.key, step: ck.step }, undefined, 1, { memories: [memories[1]], memory: { step: held } });
    assert.deepEqual(b.from, ['memory']);
    assert.deepEqual(b.started, [held]);
    const err = worstRelativeError(await finalWeights(job), want);
    t.diagnostic(`2 → 1 replicas through a survivor's memory at step ${held}: worst relative error ${err.toExponential(2)}`);
    assert.ok(err < 1e-5, `worst relative error ${err}`);
    const resumed = new Map([...a.samples, ...b.samples]);
    for (const [stepNo, keys] of straight.samples) assert.deepEqual([...resumed.get(stepNo)!].sort(), [...keys].sort(), `step ${stepNo}`);
  });
});
