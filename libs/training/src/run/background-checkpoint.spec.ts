// Background checkpoints of the run loop against the test run's real Swift: uploads are held
// back at the real store (a gate in front of putObject, nothing faked behind it) so that
// training provably moves on, or dies, while a checkpoint is in flight.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJobSpec, type JobSpec } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { initBackend, tensorsFromBytes } from '@tensorfleet/models';
import { testId, testServices } from '@tensorfleet/infra';
import { latestCheckpoint, listCheckpoints, loadCheckpoint } from '../checkpoint/checkpoint';
import { createInProcessWorld } from '../testing/in-process-comm';
import { ParallelPlan } from '../parallel/plan';
import { runTraining, type RunOutcome } from './training-run';

let store: ObjectStore;
let bucket: string;
const prefix = 'ds';

before(async () => {
  await initBackend({ backend: 'wasm' });
  store = new ObjectStore((await testServices()).s3);
  bucket = testId('bg-checkpoint');
  await writeSyntheticDataset(store, { bucket, prefix, numClasses: 4, imageSize: 16, trainPerClass: 24, valPerClass: 6, samplesPerShard: 48, seed: 3 });
});

after(async () => {
  await store?.removeAll(bucket);
});

function spec(over: Record<string, unknown>): JobSpec {
  const r = parseJobSpec({
    model: { name: 'resnet8', inputSize: 16 }, dataset: { bucket, prefix }, batchSize: 8, steps: 6,
    // a constant rate: a 3-step run and a 6-step run take the same first three steps
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4 }, lrSchedule: { type: 'constant' },
    augmentation: 'none', checkpoint: { intervalSteps: 3, keep: 5 }, evaluation: { atEnd: false }, seed: 4, parallelism: { dataParallel: 1 }, ...over,
  });
  assert.ok(r.spec, JSON.stringify(r.errors));
  return r.spec;
}

/** The real store, with puts of keys that `hold` matches waiting for what it returns. */
function gatedStore(hold: (key: string) => Promise<void> | null): ObjectStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'putObject') {
        return async (b: string, key: string, ...rest: unknown[]) => {
          await hold(key);
          return (target.putObject as (...a: unknown[]) => Promise<void>)(b, key, ...rest);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

interface Run {
  outcomes: RunOutcome[];
  /** 'step N' and 'checkpoint N' in the order they happened. */
  events: string[];
  logs: string[];
}

async function runAll(jobId: string, s: JobSpec, o: { store?: ObjectStore; resume?: { checkpointKey: string; step: number }; onStep?: (step: number) => unknown } = {}): Promise<Run> {
  const plan = new ParallelPlan(s.parallelism);
  const world = plan.worldSize > 1 ? createInProcessWorld(plan.worldSize) : [null];
  const run: Run = { outcomes: [], events: [], logs: [] };
  run.outcomes = await Promise.all(world.map((comm, rank) => runTraining({
    store: o.store ?? store,
    // the gate sits in front of this thread's store; the thread uploader has its own (tested below)
    checkpointUploads: o.store ? 'inline' : 'thread',
    joinWorld: async () => comm,
    log: (m) => void run.logs.push(m),
    stopRequested: () => null,
    reporter: {
      started: async () => undefined,
      checkpointed: async (_key, st) => void run.events.push(`checkpoint ${st}`),
      metric: async (m) => {
        if (m.kind !== 'train') return;
        run.events.push(`step ${m.step}`);
        await o.onStep?.(m.step);
      },
      updateJob: async () => undefined,
    },
  }, { jobId, runId: `${jobId}.1`, membershipEpoch: 1, rank, worldSize: plan.worldSize, spec: s, resume: o.resume })));
  return run;
}

/** Checks `done` up to `tries` times, 50 ms apart; what follows asserts the outcome. */
async function pollFor(tries: number, done: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < tries && !(await done()); i++) await new Promise((r) => setTimeout(r, 50));
}

async function tensorsAt(jobId: string, step: number) {
  const m = (await listCheckpoints(store, bucket, jobId)).find((c) => c.step === step);
  assert.ok(m, `no committed checkpoint ${step} of ${jobId}`);
  const ck = await loadCheckpoint(store, bucket, m.key);
  return { manifest: m, state: ck.state, weights: tensorsFromBytes(ck.weights), optimizer: tensorsFromBytes(ck.optimizer) };
}

const bytesOf = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function assertBitwiseEqual(got: Record<string, { data: Float32Array | Int32Array }>, want: Record<string, { data: Float32Array | Int32Array }>, what: string): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${what}: tensor names`);
  for (const [name, w] of Object.entries(want)) assert.ok(bytesOf(got[name].data).equals(bytesOf(w.data)), `${what}: ${name} differs`);
}

describe('background checkpoints of the run loop', () => {
  it('is committed whole after training moved on, with the weights and slots of its own step bit for bit', async () => {
    // Reference: a 3-step run, whose final checkpoint is written synchronously at step 3.
    const ref = testId('bg-ref');
    await runAll(ref, spec({ steps: 3, parallelism: { dataParallel: 2 }, checkpoint: { intervalSteps: 0, keep: 5, background: false } }));
    const want = await tensorsAt(ref, 3);

    // Step 3's parts reach S3 only once rank 0 has reported step 5.
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const job = testId('bg');
    const run = await runAll(job, spec({ parallelism: { dataParallel: 2 } }), {
      store: gatedStore((key) => (key.includes(`${job}/3/`) && key.endsWith('.bin') ? released : null)),
      onStep: (st) => st === 5 && release(),
    });
    assert.deepEqual(run.outcomes.map((o) => o.status), ['completed', 'completed']);
    const c3 = run.events.indexOf('checkpoint 3');
    assert.ok(c3 > run.events.indexOf('step 5'), `checkpoint 3 committed only after step 5: ${run.events.join(', ')}`);
    assert.deepEqual(run.events.filter((e) => e.startsWith('checkpoint')), ['checkpoint 3', 'checkpoint 6']);

    const got = await tensorsAt(job, 3);
    assert.equal(got.state.step, 3);
    assert.deepEqual(got.manifest.parts.map((p) => p.kind).sort(), ['optimizer', 'state', 'weights'], 'replica 0 writes weights and slots; rank 0 the state');
    assert.ok(got.manifest.parts.every((p) => /^(weights|optimizer)-r0-[0-9a-f]{8}\.bin$|^state-[0-9a-f]{8}\.json$/.test(p.file)), `part names carry rank and attempt: ${got.manifest.parts.map((p) => p.file)}`);
    assertBitwiseEqual(got.weights, want.weights, 'weights of checkpoint 3');
    assertBitwiseEqual(got.optimizer, want.optimizer, 'optimizer slots of checkpoint 3');
    assert.equal(got.state.cursors?.length, 2, 'a data position per replica');
    assert.ok(got.state.cursors.every((c) => c.epoch === 0 && c.position > 0), `the positions of step 3: ${JSON.stringify(got.state.cursors)}`);
    const later = await tensorsAt(job, 6);
    assert.ok(!bytesOf(later.weights['conv1/kernel'].data).equals(bytesOf(got.weights['conv1/kernel'].data)), 'training did move on between the checkpoints');
  });

  it('a run killed while a checkpoint uploads resumes from the previous committed one and ends as the uninterrupted run', async () => {
    const straight = testId('bg-straight');
    const s = spec({ steps: 9 });
    const want = (await runAll(straight, s)).outcomes[0].weightsHash;

    // Step 6's optimizer slots never reach S3 before the run dies at step 8; its weights do.
    let releaseHeld!: () => void;
    const held = new Promise<void>((r) => (releaseHeld = r));
    const job = testId('bg-killed');
    const killed = runAll(job, s, {
      store: gatedStore((key) => (key.includes(`${job}/6/optimizer-`) ? held : null)),
      onStep: async (st) => {
        if (st !== 8) return;
        // The kill comes once step 3's checkpoint is committed: its upload runs beside the
        // steps, which on a loaded machine can reach step 8 first.
        await pollFor(200, async () => (await latestCheckpoint(store, bucket, job))?.step === 3);
        throw new Error('killed at step 8');
      },
    });
    await assert.rejects(killed, /killed at step 8/);
    const folder6 = (await store.list(bucket, `checkpoints/${job}/6/`)).map((o) => o.key.split('/').pop());
    assert.ok(folder6.some((f) => f!.startsWith('weights-r0-')) && !folder6.includes('manifest.json'), `half-written attempt at step 6: ${folder6}`);
    const latest = await latestCheckpoint(store, bucket, job);
    assert.equal(latest?.step, 3, 'the half-written step 6 is not a checkpoint');
    // The dead run's held part lands late (as from a zombie uploader), before the resumed run saves step 6 again.
    releaseHeld();
    await pollFor(100, async () => (await store.list(bucket, `checkpoints/${job}/6/`)).some((o) => o.key.includes('/optimizer-r0-')));

    const resumed = await runAll(job, s, { resume: { checkpointKey: latest.key, step: 3 } });
    assert.equal(resumed.outcomes[0].status, 'completed');
    assert.equal(resumed.outcomes[0].weightsHash, want, 'resumed from step 3, the run ends with the uninterrupted run\'s weights');
    assert.deepEqual((await listCheckpoints(store, bucket, job)).map((m) => m.step), [3, 6, 9]);
    // The killed attempt's part at step 6 went with the next prune (its name never matched the new manifest's).
    const m6 = (await listCheckpoints(store, bucket, job)).find((m) => m.step === 6)!;
    const left = (await store.list(bucket, `checkpoints/${job}/6/`)).map((o) => o.key.split('/').pop()!).filter((f) => f !== 'manifest.json');
    assert.deepEqual(left.sort(), m6.parts.map((p) => p.file).sort());
  });

  it('a failed upload drops that checkpoint and training goes on; one due while another uploads waits for it', async () => {
    const job = testId('bg-fail');
    let releaseSlow!: () => void;
    const slow = new Promise<void>((r) => (releaseSlow = r));
    const run = await runAll(job, spec({ steps: 6, checkpoint: { intervalSteps: 2, keep: 5 } }), {
      store: gatedStore((key) => {
        if (key.includes(`${job}/2/weights-`)) return Promise.reject(Object.assign(new Error('S3 said no'), { code: 'InternalError' }));
        // step 4's upload is still going when step 6's checkpoint is due (released only then)
        if (key.includes(`${job}/4/weights-`)) return slow;
        return null;
      }),
      onStep: (st) => st === 6 && setTimeout(releaseSlow, 200),
    });
    assert.equal(run.outcomes[0].status, 'completed');
    assert.ok(run.logs.some((l) => /checkpoint 2 dropped, not committed \(S3 said no\)/.test(l)), run.logs.join('\n'));
    assert.ok(run.logs.some((l) => /checkpoint 6 is due while checkpoint 4 still uploads: waited/.test(l)), run.logs.join('\n'));
    assert.deepEqual(run.events.filter((e) => e.startsWith('checkpoint')), ['checkpoint 4', 'checkpoint 6']);
    assert.deepEqual((await listCheckpoints(store, bucket, job)).map((m) => m.step), [4, 6]);
  });
});
