import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { tensorsFromBytes, tensorsToBytes, tf } from '@tensorfleet/models';
import { ObjectStore } from '@tensorfleet/data';
import { testId, testServices } from '@tensorfleet/infra';
import {
  CheckpointState, commitCheckpoint, latestCheckpoint, listCheckpoints, loadCheckpoint, loadCheckpointTensors, pruneCheckpoints, saveCheckpoint, writeCheckpointPart,
} from './checkpoint';
import { TrainingError } from '../errors';
import { Trainer } from '../trainer/trainer';
import { createLrSchedule } from '../schedule/lr-schedule';
import { randomBatch, tinyConvNet, weightsOf } from '../testing/fixtures';

let store: ObjectStore;
let bucket: string;

before(async () => {
  await tf.setBackend('cpu');
  const services = await testServices();
  store = new ObjectStore(services.s3);
  bucket = testId('training-ckpt');
  await store.ensureBucket(bucket);
});

after(async () => {
  await store?.removeAll(bucket);
});

const state = (step: number): CheckpointState => ({
  epoch: Math.floor(step / 10),
  step,
  cursors: [{ epoch: 0, position: step * 8 }, { epoch: 0, position: step * 8 }],
  seeds: { data: 7, init: 42 },
  membership: { epoch: 1, members: ['w-a', 'w-b'] },
});
const parts = (step: number) => ({ weights: randomBytes(1000 + step), optimizer: randomBytes(500 + step), state: state(step) });
const corrupt = (e: unknown) => e instanceof TrainingError && e.code === 'CHECKPOINT_CORRUPT';

describe('checkpoints in S3', () => {
  it('save writes the parts and a manifest with sizes and sha256; load returns the same bytes', async () => {
    const job = testId('job');
    const p = parts(20);
    const key = await saveCheckpoint(store, bucket, job, 20, p);
    assert.equal(key, `checkpoints/${job}/20`);
    const listed = (await store.list(bucket, `${key}/`)).map((o) => o.key.slice(key.length + 1));
    assert.deepEqual(listed, ['manifest.json', 'optimizer.bin', 'state.json', 'weights.bin']);
    const manifest = JSON.parse((await store.getBuffer(bucket, `${key}/manifest.json`)).toString());
    assert.equal(manifest.version, 2);
    const part = (kind: string) => manifest.parts.find((x: { kind: string }) => x.kind === kind);
    assert.deepEqual(manifest.parts.map((x: { file: string }) => x.file), ['weights.bin', 'optimizer.bin', 'state.json']);
    assert.equal(part('weights').bytes, 1020);
    assert.equal(part('weights').sha256, createHash('sha256').update(p.weights).digest('hex'));
    assert.equal(part('optimizer').sha256, createHash('sha256').update(p.optimizer).digest('hex'));
    const loaded = await loadCheckpoint(store, bucket, key);
    assert.deepEqual(Buffer.from(loaded.weights), p.weights);
    assert.deepEqual(Buffer.from(loaded.optimizer), p.optimizer);
    assert.deepEqual(loaded.state, p.state);
    assert.equal(loaded.manifest.step, 20);
    assert.equal(loaded.manifest.epoch, 2);
    await assert.rejects(loadCheckpoint(store, bucket, `checkpoints/${job}/21`), (e: unknown) => e instanceof TrainingError && e.code === 'CHECKPOINT_NOT_FOUND');
  });

  it('latest ignores folders without a manifest and ones that fail the size or hash check', async () => {
    const job = testId('job');
    for (const s of [10, 20, 30, 40]) await saveCheckpoint(store, bucket, job, s, parts(s));
    // 50: a save that died before its manifest.
    await store.putObject(bucket, `checkpoints/${job}/50/weights.bin`, randomBytes(10));
    // 40: weights.bin replaced by different bytes of the same size (hash check).
    await store.putObject(bucket, `checkpoints/${job}/40/weights.bin`, randomBytes(1040));
    // 30: optimizer.bin truncated (size check, seen by list already).
    await store.putObject(bucket, `checkpoints/${job}/30/optimizer.bin`, randomBytes(10));
    assert.deepEqual((await listCheckpoints(store, bucket, job)).map((m) => m.step), [10, 20, 40]);
    assert.equal((await latestCheckpoint(store, bucket, job))?.step, 20);
    assert.equal((await latestCheckpoint(store, bucket, job, { verify: 'size' }))?.step, 40);
    await assert.rejects(loadCheckpoint(store, bucket, `checkpoints/${job}/40`), corrupt);
    await assert.rejects(loadCheckpoint(store, bucket, `checkpoints/${job}/30`), corrupt);
    assert.equal(await latestCheckpoint(store, bucket, testId('nojob')), null);
  });

  it('prune keeps the newest N committed checkpoints and removes older ones and stale leftovers', async () => {
    const job = testId('job');
    for (const s of [5, 10, 15, 20]) await saveCheckpoint(store, bucket, job, s, parts(s));
    await store.putObject(bucket, `checkpoints/${job}/12/weights.bin`, randomBytes(10)); // stale, uncommitted
    await store.putObject(bucket, `checkpoints/${job}/25/weights.bin`, randomBytes(10)); // maybe in progress
    const removed = await pruneCheckpoints(store, bucket, job, 2);
    assert.deepEqual(removed, [`checkpoints/${job}/5`, `checkpoints/${job}/10`, `checkpoints/${job}/12`]);
    const left = new Set((await store.list(bucket, `checkpoints/${job}/`)).map((o) => o.key.split('/')[2]));
    assert.deepEqual([...left].sort(), ['15', '20', '25']);
    assert.deepEqual((await listCheckpoints(store, bucket, job)).map((m) => m.step), [15, 20]);
  });

  it('re-saving a step replaces it atomically from a reader’s view', async () => {
    const job = testId('job');
    await saveCheckpoint(store, bucket, job, 7, parts(7));
    const second = { ...parts(7), weights: randomBytes(64) };
    await saveCheckpoint(store, bucket, job, 7, second);
    const loaded = await loadCheckpoint(store, bucket, `checkpoints/${job}/7/`);
    assert.deepEqual(Buffer.from(loaded.weights), second.weights);
  });

  it('parts written by several ranks: one manifest commits them; a rank reads only the parts holding its tensors; version-1 manifests still load', async () => {
    const job = testId('job');
    const step = 12;
    const a = tensorsToBytes({ 'conv/kernel': new Float32Array([1, 2, 3]), 'bn/gamma': new Float32Array([4]) });
    const b = tensorsToBytes({ 'fc/kernel': new Float32Array([5, 6]), 'fc/bias': new Float32Array([7]) });
    const va = tensorsToBytes({ 'conv/kernel/velocity': new Float32Array([0.1, 0.2, 0.3]) });
    const written = [
      await writeCheckpointPart(store, bucket, job, step, { file: 'weights-r0.bin', kind: 'weights', body: a, tensors: ['conv/kernel', 'bn/gamma'] }),
      await writeCheckpointPart(store, bucket, job, step, { file: 'weights-r1.bin', kind: 'weights', body: b, tensors: ['fc/kernel', 'fc/bias'] }),
      await writeCheckpointPart(store, bucket, job, step, { file: 'optimizer-r0.bin', kind: 'optimizer', body: va, tensors: ['conv/kernel/velocity'] }),
    ];
    assert.equal(await latestCheckpoint(store, bucket, job), null, 'not committed before the manifest');
    const key = await commitCheckpoint(store, bucket, job, step, written, state(step));
    assert.equal((await latestCheckpoint(store, bucket, job))?.step, step);
    const whole = await loadCheckpoint(store, bucket, key);
    assert.deepEqual(Object.keys(tensorsFromBytes(whole.weights)).sort(), ['bn/gamma', 'conv/kernel', 'fc/bias', 'fc/kernel']);
    // rank 1's tensors come from weights-r1.bin alone: weights-r0.bin is not even read (broken here on purpose)
    await store.putObject(bucket, `${key}/weights-r0.bin`, Buffer.alloc(a.byteLength));
    const mine = await loadCheckpointTensors(store, bucket, key, { weights: ['fc/kernel', 'fc/bias'], optimizer: [] });
    assert.deepEqual(Array.from(mine.weights['fc/kernel'].data), [5, 6]);
    assert.deepEqual(mine.state, state(step));
    await assert.rejects(loadCheckpointTensors(store, bucket, key, { weights: ['conv/kernel'], optimizer: [] }), corrupt, 'the broken part fails its hash check');
    await assert.rejects(loadCheckpointTensors(store, bucket, key, { weights: ['fc/kernel', 'fc2/kernel'], optimizer: [] }), (e: unknown) => e instanceof TrainingError && e.code === 'STATE_MISMATCH' && /fc2\/kernel/.test(e.message));
    // a version-1 checkpoint, as the first sessions wrote them
    const old = `checkpoints/${job}/3`;
    const w = tensorsToBytes({ 'conv/kernel': new Float32Array([9]) });
    const o = tensorsToBytes({});
    const st = Buffer.from(JSON.stringify(state(3)));
    for (const [f, body] of [['weights.bin', w], ['optimizer.bin', o], ['state.json', st]] as const) await store.putObject(bucket, `${old}/${f}`, body);
    const d = (body: Uint8Array, file: string) => ({ file, bytes: body.byteLength, sha256: createHash('sha256').update(body).digest('hex') });
    await store.putObject(bucket, `${old}/manifest.json`, Buffer.from(JSON.stringify({ version: 1, jobId: job, step: 3, epoch: 0, key: old, createdAt: new Date().toISOString(), parts: { weights: d(w, 'weights.bin'), optimizer: d(o, 'optimizer.bin'), state: d(st, 'state.json') } })));
    const v1 = await loadCheckpointTensors(store, bucket, old, { weights: ['conv/kernel'], optimizer: [] });
    assert.deepEqual(Array.from(v1.weights['conv/kernel'].data), [9]);
    assert.equal((await listCheckpoints(store, bucket, job)).map((m) => m.step).join(), '3,12');
  });

  it('a trainer restored from a checkpoint continues bitwise like the original', async () => {
    const job = testId('job');
    const spec = { type: 'plateau' as const, lr: 0.1, patience: 0, gamma: 0.5 };
    const make = () => new Trainer({ model: tinyConvNet(8), optimizer: { momentum: 0.9, weightDecay: 1e-4 }, schedule: createLrSchedule(spec, { stepsPerEpoch: 4, totalSteps: 40 }) });
    const original = make();
    for (let s = 0; s < 3; s++) await original.step(randomBatch(s, 6, [8, 8, 3], 5));
    original.schedule.observe(1);
    original.schedule.observe(2); // one reduction: lr 0.05
    await saveCheckpoint(store, bucket, job, original.stepsDone, {
      weights: original.weightsBytes(),
      optimizer: original.optimizerBytes(),
      state: { epoch: 0, step: original.stepsDone, trainer: original.state() },
    });
    const latest = await latestCheckpoint(store, bucket, job);
    assert.ok(latest);
    const ck = await loadCheckpoint(store, bucket, latest.key);
    const resumed = make();
    resumed.restore({ weights: ck.weights });
    resumed.loadState(ck.optimizer, ck.state.trainer);
    assert.equal(resumed.stepsDone, 3);
    assert.equal(resumed.lr, 0.05);
    for (let s = 3; s < 5; s++) {
      const b = randomBatch(s, 6, [8, 8, 3], 5);
      const [{ timings: _a, ...a }, { timings: _r, ...r }] = [await original.step(b), await resumed.step(b)];
      assert.deepEqual(r, a);
    }
    assert.deepEqual(weightsOf(resumed.model), weightsOf(original.model));
    original.dispose();
    resumed.dispose();
  });
});
