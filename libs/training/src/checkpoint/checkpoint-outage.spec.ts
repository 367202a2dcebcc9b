// A checkpoint is committed whole or not at all when S3 goes away between its part uploads
// (a real Swift whose proxy this spec stops right after the first part is stored).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ObjectStore, RetryPolicy } from '@tensorfleet/data';
import { startSwift, testId, type RunningSwift } from '@tensorfleet/infra';
import { latestCheckpoint, listCheckpoints, loadCheckpoint, saveCheckpoint, type CheckpointStore } from './checkpoint';

describe('checkpoint through an S3 outage', { timeout: 5 * 60_000 }, () => {
  let swift: RunningSwift;
  const bucket = testId('ckpt-outage');
  const lines: string[] = [];
  const storeWith = (budgetMs: number) => new ObjectStore(swift.config, { retry: new RetryPolicy({ budgetMs, baseMs: 100, maxMs: 1000, log: (l) => lines.push(l) }) });
  const parts = (step: number) => ({ weights: randomBytes(40_000), optimizer: randomBytes(20_000), state: { epoch: 0, step } });

  /** The real store, which stops the proxy as soon as the first weights/optimizer part is stored. */
  const outageAfterFirstPart = (store: ObjectStore, onStopped: () => void): CheckpointStore => {
    let stopped = false;
    return {
      putObject: async (b, k, body, meta) => {
        await store.putObject(b, k, body, meta);
        if (!stopped && /\/(weights|optimizer)\.bin$/.test(k)) {
          stopped = true;
          await swift.stopProxy();
          onStopped();
        }
      },
      getBuffer: (b, k) => store.getBuffer(b, k),
      exists: (b, k) => store.exists(b, k),
      list: (b, p) => store.list(b, p),
      remove: (b, k) => store.remove(b, k),
    };
  };

  before(async () => {
    swift = await startSwift({ label: 'ckpt-outage' });
    await storeWith(10_000).ensureBucket(bucket);
  });
  after(async () => {
    await swift?.startProxy().catch(() => undefined);
    await swift?.stop();
  });

  it('an outage shorter than the budget: the checkpoint completes once the proxy is back, every part intact', async () => {
    const store = storeWith(60_000);
    const job = 'short-outage';
    const p = parts(10);
    lines.length = 0;
    let restarted: Promise<void> | undefined;
    const key = await saveCheckpoint(outageAfterFirstPart(store, () => {
      restarted = new Promise((r) => setTimeout(r, 2500)).then(() => swift.startProxy());
    }), bucket, job, 10, p);
    await restarted;
    assert.ok(lines.length > 0, 'the upload retried during the outage');
    const loaded = await loadCheckpoint(store, bucket, key);
    assert.ok(Buffer.from(loaded.weights).equals(p.weights) && Buffer.from(loaded.optimizer).equals(p.optimizer));
    assert.deepEqual(loaded.state, p.state);
    assert.deepEqual((await listCheckpoints(store, bucket, job)).map((m) => m.step), [10]);
  });

  it('an outage longer than the budget: the checkpoint is absent, never half there, and resuming takes the previous one', async () => {
    const store = storeWith(1500);
    const job = 'long-outage';
    const first = parts(4);
    await saveCheckpoint(store, bucket, job, 4, first);
    try {
      await assert.rejects(saveCheckpoint(outageAfterFirstPart(store, () => undefined), bucket, job, 8, parts(8)), { code: 'S3_UNREACHABLE' });
    } finally {
      await swift.startProxy();
    }
    // Parts written before the outage may be left over; no manifest points at them.
    assert.equal(await store.exists(bucket, `checkpoints/${job}/8/manifest.json`), false);
    assert.ok((await store.list(bucket, `checkpoints/${job}/8/`)).length >= 1, 'the first part was stored before the proxy stopped');
    assert.deepEqual((await listCheckpoints(store, bucket, job)).map((m) => m.step), [4]);
    const latest = await latestCheckpoint(store, bucket, job);
    assert.equal(latest?.step, 4);
    const resumed = await loadCheckpoint(store, bucket, latest!.key);
    assert.ok(Buffer.from(resumed.weights).equals(first.weights), 'the previous checkpoint reads back whole');
  });
});
