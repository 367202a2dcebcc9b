// S3 over https against a real Swift whose proxy serves TLS with a private CA: the settings a
// MinIO deployment behind TLS takes (https:// endpoint, keys, the CA in S3_CA_FILE).
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startSwift, testId, tlsCertificates, type RunningSwift, type TestCertificates } from '@tensorfleet/infra';
import { DataError } from '../errors';
import { ObjectStore } from './object-store';
import { RetryPolicy } from './retry-policy';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('ObjectStore over https (Swift behind TLS)', () => {
  let certs: TestCertificates;
  let otherCa: TestCertificates;
  let swift: RunningSwift;
  const bucket = testId('s3-tls');

  before(async () => {
    [certs, otherCa] = await Promise.all([tlsCertificates(), tlsCertificates()]);
    swift = await startSwift({ label: 's3-tls', tls: { ...certs.certs.server, caFile: certs.caFile } });
  });
  after(async () => {
    await swift?.stop();
    for (const c of [certs, otherCa]) if (c) rmSync(c.dir, { recursive: true, force: true });
  });

  it('with the CA: objects, in one request and in parts, come back byte for byte', async () => {
    assert.match(swift.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(swift.config.useSSL, true);
    assert.equal(swift.config.caFile, certs.caFile);
    const store = new ObjectStore(swift.config);
    await store.ensureBucket(bucket);
    const small = Buffer.from('over TLS');
    // Above the 16 MiB part size: a multipart upload, each part its own TLS request.
    const big = Buffer.alloc(17 * 1024 * 1024 + 5);
    for (let i = 0; i + 4 <= big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    await store.putObject(bucket, 'a/small', small);
    await store.putObject(bucket, 'a/big', big);
    assert.equal((await store.getBuffer(bucket, 'a/small')).toString(), 'over TLS');
    assert.equal(sha(await store.getBuffer(bucket, 'a/big')), sha(big));
    assert.deepEqual((await store.list(bucket, 'a/')).map((o) => [o.key, o.size]), [['a/big', big.length], ['a/small', small.length]]);
    await store.removeAll(bucket);
  });

  it('with another CA or none: S3_TLS at once (no retries), saying to set S3_CA_FILE', async () => {
    for (const caFile of [otherCa.caFile, undefined]) {
      const retries: string[] = [];
      const store = new ObjectStore({ ...swift.config, caFile }, { retry: new RetryPolicy({ log: (l) => retries.push(l) }) });
      await assert.rejects(store.list(bucket, ''), (e: unknown) => {
        assert.ok(e instanceof DataError && e.code === 'S3_TLS', String(e));
        assert.match(e.message, /S3 at https:\/\/127\.0\.0\.1:\d+: its TLS certificate is not trusted \([A-Z_]+: .*\): set S3_CA_FILE to the PEM file of the CA/);
        return true;
      });
      assert.deepEqual(retries, [], 'an untrusted certificate is not retried');
    }
  });

  it('an unreadable S3_CA_FILE is an error naming it', () => {
    assert.throws(() => new ObjectStore({ ...swift.config, caFile: '/nonexistent/ca.pem' }), (e: unknown) =>
      e instanceof DataError && e.code === 'BAD_OPTIONS' && /S3_CA_FILE='\/nonexistent\/ca.pem' cannot be read \(ENOENT\)/.test(e.message));
  });
});
