import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'ioredis';
import * as Minio from 'minio';
import { InfraError, resolveServices, s3ConfigFromEnv, startRedis, startSwift, testId, testServices } from './index';

const MB = 1024 * 1024;

/** Resolves 'open' or 'closed' for a TCP port on 127.0.0.1. */
function probe(port: number): Promise<'open' | 'closed'> {
  return new Promise((done) => {
    const sock = connect(port, '127.0.0.1');
    sock.once('connect', () => (sock.destroy(), done('open')));
    sock.once('error', () => done('closed'));
  });
}

/** 12 MB in 64 KiB chunks, as a file or network stream would deliver it. */
function patterned(bytes: number): Buffer {
  const buf = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 4) buf.writeUInt32LE((i * 2654435761) >>> 0, i);
  return buf;
}
function* chunks(buf: Buffer, size: number) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}
async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('s3ConfigFromEnv', () => {
  it('is null without S3_ENDPOINT', () => {
    assert.equal(s3ConfigFromEnv({ S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' }), null);
  });
  it('parses host, port, scheme, keys and region', () => {
    assert.deepEqual(s3ConfigFromEnv({ S3_ENDPOINT: 'http://minio:9000', S3_ACCESS_KEY: 'ak', S3_SECRET_KEY: 'sk' }), {
      endPoint: 'minio', port: 9000, useSSL: false, accessKey: 'ak', secretKey: 'sk', region: 'us-east-1',
    });
    assert.deepEqual(s3ConfigFromEnv({ S3_ENDPOINT: 'https://s3.example.com', S3_ACCESS_KEY: 'ak', S3_SECRET_KEY: 'sk', S3_REGION: 'eu-west-1' }), {
      endPoint: 's3.example.com', port: 443, useSSL: true, accessKey: 'ak', secretKey: 'sk', region: 'eu-west-1',
    });
    assert.equal(s3ConfigFromEnv({ S3_ENDPOINT: '10.0.0.5:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' })?.port, 9000);
  });
  it('takes S3_CA_FILE for an https endpoint and refuses it for http', () => {
    assert.equal(s3ConfigFromEnv({ S3_ENDPOINT: 'https://minio:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b', S3_CA_FILE: '/etc/ssl/minio-ca.pem' })?.caFile, '/etc/ssl/minio-ca.pem');
    assert.equal(s3ConfigFromEnv({ S3_ENDPOINT: 'https://minio:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' })?.caFile, undefined);
    assert.throws(() => s3ConfigFromEnv({ S3_ENDPOINT: 'http://minio:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b', S3_CA_FILE: '/ca.pem' }), /S3_CA_FILE is set but S3_ENDPOINT='http:\/\/minio:9000' is http:\/\/: use https:\/\//);
  });
  it('rejects missing keys, other schemes and paths with a message saying what to set', () => {
    assert.throws(() => s3ConfigFromEnv({ S3_ENDPOINT: 'http://h:9000' }), (e: unknown) => e instanceof InfraError && e.code === 'BAD_ENV' && /S3_ACCESS_KEY/.test(e.message));
    assert.throws(() => s3ConfigFromEnv({ S3_ENDPOINT: 'ftp://h:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' }), /http:\/\/ or https:\/\//);
    assert.throws(() => s3ConfigFromEnv({ S3_ENDPOINT: 'http://h:9000/bucket', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' }), /path/);
  });
});

describe('resolveServices', () => {
  it('takes both from the environment and starts nothing', async () => {
    const label = testId('env');
    const svc = await resolveServices({
      label,
      env: { REDIS_URL: 'redis://10.1.2.3:6380', S3_ENDPOINT: 'http://10.1.2.3:9000', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's', S3_REGION: 'r1' },
    });
    assert.equal(svc.redisUrl, 'redis://10.1.2.3:6380');
    assert.deepEqual(svc.s3, { endPoint: '10.1.2.3', port: 9000, useSSL: false, accessKey: 'k', secretKey: 's', region: 'r1' });
    assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.includes(label)), []);
    await svc.stop();
  });

  it('starts only what the environment lacks, and stop() stops only that', async () => {
    const label = testId('mixed');
    const svc = await resolveServices({ label, env: { S3_ENDPOINT: 'http://10.1.2.3:9000', S3_ACCESS_KEY: 'k', S3_SECRET_KEY: 's' } });
    const dirs = readdirSync(tmpdir()).filter((n) => n.includes(label));
    assert.equal(dirs.length, 1);
    assert.match(dirs[0], /^tf-redis-/);
    assert.equal(svc.s3.endPoint, '10.1.2.3');
    const port = Number(new URL(svc.redisUrl).port);
    assert.equal(await probe(port), 'open');
    await svc.stop();
    assert.equal(await probe(port), 'closed');
    assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.includes(label)), []);
  });
});

describe('private Redis and Swift', () => {
  const toStop: Array<() => Promise<void>> = [];
  after(async () => {
    await Promise.all(toStop.map((s) => s()));
  });

  it('start, serve the minio client and Redis, and stop with their ports closed', async () => {
    let t = Date.now();
    const redis = await startRedis({ label: 'spec' });
    const redisMs = Date.now() - t;
    toStop.push(redis.stop);
    t = Date.now();
    const swift = await startSwift({ label: 'spec' });
    const swiftMs = Date.now() - t;
    toStop.push(swift.stop);
    console.log(`# start times: redis ${redisMs} ms, swift ${swiftMs} ms`);
    assert.equal(swift.url, `http://127.0.0.1:${swift.config.port}`);

    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    assert.equal(await client.ping(), 'PONG');
    await client.set('tf:spec:k', 'v1');
    assert.equal(await client.get('tf:spec:k'), 'v1');
    assert.deepEqual(await client.config('GET', 'save'), ['save', '']);
    client.disconnect();

    const s3 = new Minio.Client({ ...swift.config, pathStyle: true, partSize: 5 * MB });
    const bucket = testId('spec');
    await s3.makeBucket(bucket, swift.config.region);
    assert.equal(await s3.bucketExists(bucket), true);
    assert.ok((await s3.listBuckets()).some((b) => b.name === bucket));

    await s3.putObject(bucket, 'small/hello.txt', Buffer.from('hello swift'));
    assert.equal((await readAll(await s3.getObject(bucket, 'small/hello.txt'))).toString(), 'hello swift');
    assert.equal((await readAll(await s3.getPartialObject(bucket, 'small/hello.txt', 6, 5))).toString(), 'swift');

    // A stream larger than partSize goes up as a multipart upload: 5 + 5 + 2 MB.
    const big = patterned(12 * MB);
    const put = await s3.putObject(bucket, 'big/blob.bin', Readable.from(chunks(big, 64 * 1024)), big.length);
    assert.match(put.etag, /-3$/, `expected a 3-part multipart ETag, got ${put.etag}`);
    const stat = await s3.statObject(bucket, 'big/blob.bin');
    assert.equal(stat.size, big.length);
    assert.equal(sha(await readAll(await s3.getObject(bucket, 'big/blob.bin'))), sha(big));
    // the parts live in Swift's `<bucket>+segments` container, which S3 listings hide
    assert.deepEqual((await s3.listBuckets()).map((b) => b.name).filter((n) => n.startsWith(bucket)), [bucket]);

    const names: string[] = [];
    for await (const o of s3.listObjectsV2(bucket, '', true)) names.push((o as { name: string }).name);
    assert.deepEqual(names.sort(), ['big/blob.bin', 'small/hello.txt']);
    const top: string[] = [];
    for await (const o of s3.listObjectsV2(bucket, '', false)) top.push((o as { prefix?: string }).prefix ?? '');
    assert.deepEqual(top.sort(), ['big/', 'small/']);

    await s3.removeObjects(bucket, names);
    const left: string[] = [];
    for await (const o of s3.listObjectsV2(bucket, '', true)) left.push((o as { name: string }).name);
    assert.deepEqual(left, []);
    await s3.removeBucket(bucket);
    assert.equal(await s3.bucketExists(bucket), false);

    const wrong = new Minio.Client({ ...swift.config, secretKey: 'not-the-secret', pathStyle: true });
    await assert.rejects(wrong.listBuckets(), (e: { code?: string }) => e.code === 'SignatureDoesNotMatch');

    await Promise.all([redis.stop(), swift.stop()]);
    await redis.stop(); // idempotent
    assert.equal(await probe(redis.port), 'closed');
    assert.equal(await probe(swift.config.port), 'closed');
    assert.equal(existsSync(redis.dir), false);
    assert.equal(existsSync(swift.dir), false);
  });

  it('stop() of one Redis leaves another running', async () => {
    const [a, b] = await Promise.all([startRedis({ label: 'a' }), startRedis({ label: 'b' })]);
    toStop.push(a.stop, b.stop);
    assert.notEqual(a.port, b.port);
    await a.stop();
    assert.equal(await probe(a.port), 'closed');
    assert.equal(await probe(b.port), 'open');
    await b.stop();
    assert.equal(await probe(b.port), 'closed');
  });

  it('restart() brings Redis back on the same port: with appendfsync always every acknowledged write survives a kill -9, without persistence none does', async () => {
    const [aof, plain] = await Promise.all([startRedis({ label: 'aof', appendfsync: 'always' }), startRedis({ label: 'plain' })]);
    toStop.push(aof.stop, plain.stop);
    assert.equal(aof.persistence, 'aof-always');
    assert.equal(plain.persistence, 'none');
    for (const r of [aof, plain]) {
      const c = new Redis(r.url, { maxRetriesPerRequest: 1 });
      await c.set('k', 'v');
      await c.xadd('s', '*', 'f', '1');
      c.disconnect();
      await r.restart({ crash: true });
      assert.equal(await probe(r.port), 'open', 'the same port answers again');
    }
    const a = new Redis(aof.url, { maxRetriesPerRequest: 1 });
    assert.equal(await a.get('k'), 'v');
    assert.equal(await a.xlen('s'), 1);
    assert.equal(await a.config('GET', 'appendfsync').then((r) => (r as string[])[1]), 'always');
    a.disconnect();
    const p = new Redis(plain.url, { maxRetriesPerRequest: 1 });
    assert.equal(await p.get('k'), null, 'no persistence: the data is gone after a crash');
    p.disconnect();
    await assert.rejects(startRedis({ appendfsync: 'sometimes' as 'always' }), (e: unknown) => e instanceof InfraError && e.code === 'BAD_OPTIONS' && /appendfsync must be 'always' or 'everysec'/.test(e.message));
    await Promise.all([aof.stop(), plain.stop()]);
    await assert.rejects(aof.restart(), (e: unknown) => e instanceof InfraError && /is stopped/.test(e.message));
  });

  it('rejects a port that is already taken, naming it', async () => {
    const a = await startRedis({ label: 'taken' });
    toStop.push(a.stop);
    const label = testId('taken');
    await assert.rejects(startRedis({ port: a.port, label }), (e: unknown) => e instanceof InfraError && e.code === 'START_FAILED' && e.message.includes(`port ${a.port}`));
    assert.deepEqual(readdirSync(tmpdir()).filter((n) => n.includes(label)), [], 'the failed start removes its temp folder');
    await a.stop();
  });

  it('testServices() hands out a working Redis and S3 config (shared or private)', async () => {
    const svc = await testServices();
    assert.equal(await testServices(), svc);
    const client = new Redis(svc.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    assert.equal(await client.ping(), 'PONG');
    client.disconnect();
    const s3 = new Minio.Client({ ...svc.s3, pathStyle: true });
    assert.ok(Array.isArray(await s3.listBuckets()));
    toStop.push(svc.stop);
  });
});
