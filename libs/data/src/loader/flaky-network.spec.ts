import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, Server, Socket } from 'node:net';
import { testStore, collect } from '../spec-helpers';
import { ObjectStore } from '../store/object-store';
import { writeSyntheticDataset } from '../synthetic';
import { ShardLoader, ShardLoaderOptions } from './shard-loader';

let store: ObjectStore;
let bucket: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ store, bucket, cleanup } = await testStore('flaky'));
  await writeSyntheticDataset(store, { bucket, prefix: 'd', numClasses: 3, imageSize: 32, trainPerClass: 40, valPerClass: 0, samplesPerShard: 40, seed: 2 });
});
after(() => cleanup());

/** A TCP proxy to the S3 server that kills the first `cuts` connections once they have carried `after` response bytes. */
async function cuttingProxy(port: number, cuts: number, after: number): Promise<{ server: Server; port: number; cut: () => number }> {
  let done = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const up = connect(port, '127.0.0.1');
    sockets.add(client).add(up);
    let n = 0;
    client.pipe(up);
    up.on('data', (d: Buffer) => {
      n += d.length;
      if (done < cuts && n > after) {
        done++;
        client.write(d.subarray(0, d.length - (n - after)));
        client.destroy();
        up.destroy();
        return;
      }
      client.write(d);
    });
    const end = () => {
      client.destroy();
      up.destroy();
    };
    up.on('error', end).on('close', end);
    client.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    for (const s of sockets) s.destroy();
    return close(cb);
  };
  return { server, port: (server.address() as { port: number }).port, cut: () => done };
}

test('a download broken mid-shard resumes from the last byte: same batches, nothing counted corrupt', async () => {
  const opts: Omit<ShardLoaderOptions, 'store'> = { bucket, prefix: 'd', split: 'train', rank: 0, worldSize: 1, seed: 3, batchSize: 8, pipeline: 'small', inputSize: 32, decodeThreads: 0 };
  const clean = await collect(new ShardLoader({ store, ...opts }).batches(0));
  const proxy = await cuttingProxy(store.cfg.port, 3, 60_000);
  try {
    const flaky = new ObjectStore({ ...store.cfg, port: proxy.port });
    const l = new ShardLoader({ store: flaky, ...opts });
    const got = await collect(l.batches(0));
    assert.ok(proxy.cut() >= 2, `only ${proxy.cut()} connections were cut`);
    assert.equal(l.stats.corrupt, 0);
    assert.equal(got.length, clean.length);
    for (let i = 0; i < got.length; i++) {
      assert.deepEqual(got[i].keys, clean[i].keys);
      assert.ok(Buffer.from(got[i].images.buffer).equals(Buffer.from(clean[i].images.buffer)));
    }
  } finally {
    proxy.server.close();
  }
});
