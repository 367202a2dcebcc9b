import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { testStore } from '../spec-helpers';
import { ObjectStore } from './object-store';
import { Rng } from '../rng';
import { readManifest, writeManifest, DatasetManifest } from '../manifest';
import { DataError } from '../errors';

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
before(async () => ({ store, bucket, cleanup } = await testStore('store')));
after(() => cleanup());

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

test('put/get/exists/list/remove, metadata, idempotent ensureBucket', async () => {
  await store.ensureBucket(bucket);
  await store.putObject(bucket, 'a/x.bin', Buffer.from('hello'), { 'x-amz-meta-tf-sha1': 'abc' });
  await store.putObject(bucket, 'a/y.bin', new Uint8Array([1, 2, 3]));
  await store.putObject(bucket, 'b/z.bin', Buffer.from('z'));
  assert.equal((await store.getBuffer(bucket, 'a/x.bin')).toString(), 'hello');
  assert.deepEqual([...(await store.getBuffer(bucket, 'a/y.bin'))], [1, 2, 3]);
  assert.equal((await store.stat(bucket, 'a/x.bin'))!.meta['tf-sha1'], 'abc');
  assert.deepEqual((await store.list(bucket, 'a/')).map((o) => [o.key, o.size]), [['a/x.bin', 5], ['a/y.bin', 3]]);
  assert.equal(await store.exists(bucket, 'a/nope'), false);
  await store.remove(bucket, 'a/x.bin');
  assert.equal(await store.exists(bucket, 'a/x.bin'), false);
  assert.equal(await store.stat(bucket, 'a/x.bin'), null);
});

test('large buffers and streams go up in parts and come back byte for byte', async () => {
  const rng = new Rng(1);
  const big = Buffer.alloc(33 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32LE(rng.nextU32(), Math.min(i, big.length - 4));
  await store.putObject(bucket, 'big/buf', big, { 'x-amz-meta-tf-sha1': 'kept' });
  const st = await store.stat(bucket, 'big/buf');
  assert.equal(st!.meta['tf-sha1'], 'kept', 'user metadata survives a multipart upload (restartable ingestion needs it)');
  assert.equal(st!.size, big.length);
  assert.match(st!.etag, /-3$/, 'multipart etag has the part count');
  assert.equal(md5(await store.getBuffer(bucket, 'big/buf')), md5(big));
  await store.putObject(bucket, 'big/stream', Readable.from((function* () {
    for (let o = 0; o < big.length; o += 1 << 20) yield big.subarray(o, o + (1 << 20));
  })()));
  assert.equal(md5(await store.getBuffer(bucket, 'big/stream')), md5(big));
});

test('manifest round trip; a missing one says how to fix it', async () => {
  const m: DatasetManifest = { version: 1, name: 'x', splits: { train: { shards: [{ key: 'p/train-000000.tar', samples: 2, bytes: 10 }], samples: 2 } }, classes: [{ id: 0, name: 'a' }], mean: [0.1, 0.2, 0.3], std: [1, 1, 1] };
  await writeManifest(store, bucket, 'p/', m);
  assert.deepEqual(await readManifest(store, bucket, 'p'), m);
  await assert.rejects(readManifest(store, bucket, 'nothing-here'), (e: DataError) => e.code === 'NO_MANIFEST' && /ingest/.test(e.message));
  await assert.rejects(writeManifest(store, bucket, 'q', { ...m, splits: { train: { ...m.splits.train, samples: 3 } } }), (e: DataError) => e.code === 'BAD_MANIFEST');
});
