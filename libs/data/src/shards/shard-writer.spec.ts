import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { testStore } from '../spec-helpers';
import { ObjectStore } from '../store/object-store';
import { ShardWriter } from './shard-writer';
import { parseTar, groupSamples } from '../tar/tar-parser';
import { DataError } from '../errors';

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
before(async () => ({ store, bucket, cleanup } = await testStore('writer')));
after(() => cleanup());

const image = (i: number) => Buffer.alloc(3000 + (i % 5) * 100, i);

async function writeAll(prefix: string, targetBytes: number) {
  const events: boolean[] = [];
  const w = new ShardWriter(store, { bucket, prefix, split: 'train', targetBytes, concurrency: 2, onShard: (_s, reused) => events.push(reused) });
  for (let i = 0; i < 30; i++) await w.add({ key: `k${i}`, image: image(i), ext: 'jpg', label: i % 7 });
  return { shards: await w.close(), events, w };
}

test('rolls shards at the target size, uploads them all, entries in WebDataset order', async () => {
  const { shards, events } = await writeAll('p', 20_000);
  assert.ok(shards.length >= 5, `${shards.length} shards`);
  assert.equal(shards.reduce((a, s) => a + s.samples, 0), 30);
  assert.deepEqual(shards.map((s) => s.key), shards.map((_, i) => `p/train-${String(i).padStart(6, '0')}.tar`));
  assert.equal(events.length, shards.length);
  let i = 0;
  for (const s of shards) {
    assert.ok(s.bytes <= 20_000, `${s.key}: ${s.bytes} bytes`);
    const buf = await store.getBuffer(bucket, s.key);
    assert.equal(buf.length, s.bytes);
    for await (const sample of groupSamples(parseTar([buf]))) {
      assert.equal(sample.key, `k${i}`);
      assert.deepEqual([...sample.files.keys()], ['jpg', 'cls']);
      assert.ok(sample.files.get('jpg')!.equals(image(i)));
      assert.equal(sample.files.get('cls')!.toString(), String(i % 7));
      i++;
    }
  }
  assert.equal(i, 30);
});

test('rewriting the same samples reuses every shard already uploaded whole', async () => {
  const first = await writeAll('r', 20_000);
  // damage one shard: it must be uploaded again
  await store.putObject(bucket, first.shards[1].key, Buffer.from('garbage'));
  const second = await writeAll('r', 20_000);
  assert.deepEqual(second.shards, first.shards);
  assert.equal(second.w.skipped, first.shards.length - 1);
  assert.equal(second.events.filter((r) => !r).length, 1);
  assert.equal((await store.getBuffer(bucket, first.shards[1].key)).length, first.shards[1].bytes);
});

test('keys with dots are refused with a reason', async () => {
  const w = new ShardWriter(store, { bucket, prefix: 'x', split: 'train' });
  await assert.rejects(w.add({ key: 'a.b', image: Buffer.alloc(1), ext: 'jpg', label: 0 }), (e: DataError) => e.code === 'BAD_OPTIONS' && /dot/.test(e.message));
});
