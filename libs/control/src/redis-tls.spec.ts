// Against real redis-servers that speak only TLS (the plain port off) and know only an ACL user
// confined to a key prefix: what a client without the password, with a wrong one, with the
// wrong CA or without a required client certificate is told, and that with them all works.
import { rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { startRedis, testId, tlsCertificates, type RunningRedis, type TestCertificates } from '@tensorfleet/infra';
import { ControlPlane } from './control-plane';
import { ControlPlaneError } from './errors';
import { openRedis, redactRedisUrl, redisOptions, redisTlsFromEnv, waitForRedis, type RedisTls } from './redis-connection';

/** waitForRedis, but failing the test instead of waiting forever when neither ready nor a fatal error comes. */
async function attempt(url: string, tls: RedisTls | undefined): Promise<{ redis: Redis; error?: Error }> {
  const redis = openRedis(url, tls, 'spec', () => undefined, { maxRetriesPerRequest: null });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      waitForRedis(redis, url),
      new Promise((_, fail) => { timer = setTimeout(() => fail(new Error(`neither ready nor refused within 15 s: ${url}`)), 15_000); }),
    ]);
    return { redis };
  } catch (error) {
    redis.disconnect();
    return { redis, error: error as Error };
  } finally {
    clearTimeout(timer);
  }
}

/** What a plain TCP client gets for PING on the TLS port: the first bytes, or how it ended. */
function plainPing(port: number): Promise<string> {
  return new Promise((done) => {
    const sock = connect(port, '127.0.0.1', () => sock.write('PING\r\n'));
    let got = '';
    sock.setTimeout(5000, () => (sock.destroy(), done(`timeout${got ? `: ${got}` : ''}`)));
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('error', (e) => done(`error ${(e as NodeJS.ErrnoException).code}`));
    sock.on('close', () => done(got ? `data: ${JSON.stringify(got)}` : 'closed'));
  });
}

describe('redisOptions and redisTlsFromEnv', () => {
  it('reads REDIS_TLS_* and rejects what cannot work, naming the variable', () => {
    assert.equal(redisTlsFromEnv({}), undefined);
    assert.deepEqual(redisTlsFromEnv({ REDIS_TLS_CA_FILE: ' /ca.pem ', REDIS_TLS_SERVERNAME: 'redis.internal' }), { caFile: '/ca.pem', servername: 'redis.internal' });
    assert.deepEqual(redisOptions('redis://h:1', undefined, { db: 2 }), { db: 2 });
    assert.throws(() => redisOptions('redis://h:1', { caFile: '/ca.pem' }), (e: unknown) => e instanceof ControlPlaneError && /REDIS_TLS_CA_FILE is set but REDIS_URL is redis:\/\/.*use rediss:\/\//.test(e.message));
    assert.throws(() => redisOptions('rediss://h:1', { certFile: '/c.pem' }), /REDIS_TLS_CERT_FILE is set without REDIS_TLS_KEY_FILE/);
    assert.throws(() => redisOptions('rediss://h:1', { caFile: '/nonexistent/ca.pem' }), /REDIS_TLS_CA_FILE='\/nonexistent\/ca.pem' cannot be read \(ENOENT\)/);
    assert.throws(() => redisOptions('http://u:secret@h:1', undefined), (e: unknown) => e instanceof Error && /not a redis URL/.test(e.message) && !e.message.includes('secret'));
    assert.equal(redactRedisUrl('rediss://fleet:p%40ss@h:6380/0'), 'rediss://fleet:***@h:6380/0');
    assert.equal(redactRedisUrl('redis://:only-pass@h:6379'), 'redis://:***@h:6379');
    assert.equal(redactRedisUrl('redis://h:6379'), 'redis://h:6379');
  });
});

describe('Redis over TLS with an ACL user', () => {
  let certs: TestCertificates;
  let wrongCa: TestCertificates;
  let server: RunningRedis;
  let mtls: RunningRedis;
  const prefix = testId('tls');
  const password = randomBytes(16).toString('hex');
  let url: string;
  let tls: RedisTls;
  const open: Redis[] = [];

  before(async () => {
    certs = await tlsCertificates({ names: ['server', 'client'] });
    wrongCa = await tlsCertificates();
    const serverTls = { certFile: certs.certs.server.certFile, keyFile: certs.certs.server.keyFile, caFile: certs.caFile };
    // The user may touch only keys under the prefix; the default user is off.
    const acl = ['user default off', `user fleet on >${password} ~${prefix}* &* +@all`];
    [server, mtls] = await Promise.all([
      startRedis({ label: 'tls-acl', tls: serverTls, acl }),
      startRedis({ label: 'tls-mtls', tls: { ...serverTls, authClients: 'yes' }, acl }),
    ]);
    url = server.url.replace('rediss://', `rediss://fleet:${password}@`);
    tls = { caFile: certs.caFile };
  });
  after(async () => {
    for (const r of open) r.disconnect();
    await Promise.all([server?.stop(), mtls?.stop()]);
    rmSync(certs.dir, { recursive: true, force: true });
    rmSync(wrongCa.dir, { recursive: true, force: true });
  });

  it('serves only TLS: the URL is rediss:// and a plain client gets no PONG', async () => {
    assert.match(server.url, /^rediss:\/\/127\.0\.0\.1:\d+$/);
    const plain = await plainPing(server.port);
    assert.doesNotMatch(plain, /PONG/);
  });

  it('with the user, password and CA: ready, and the ACL confines it to its prefix', async () => {
    const { redis, error } = await attempt(url, tls);
    assert.equal(error, undefined);
    open.push(redis);
    assert.equal(await redis.set(`${prefix}:k`, 'v'), 'OK');
    assert.equal(await redis.get(`${prefix}:k`), 'v');
    await assert.rejects(redis.set('elsewhere:k', 'v'), /NOPERM/);
    // The control plane's own keys live under its prefix, so the confined user runs it.
    const control = new ControlPlane(redis, { prefix });
    await control.registerWorker({ id: 'w-tls', host: 'h', pid: 1, backend: 'cpu', device: 'cpu', address: { hostId: 'h', tcp: 'tcp://127.0.0.1:1', ipc: null } }, { ttlMs: 10_000 });
    assert.deepEqual((await control.listWorkers()).map((w) => w.id), ['w-tls']);
  });

  it('without the password: refused, told to put user and password in REDIS_URL', async () => {
    const { error } = await attempt(server.url, tls);
    assert.ok(error instanceof ControlPlaneError && error.code === 'REDIS_ACCESS', String(error));
    assert.match(error.message, /wants a user and password \(NOAUTH/);
    assert.match(error.message, /REDIS_URL as redis:\/\/USER:PASSWORD@HOST:PORT/);
  });

  it('with a wrong password: refused, naming the user and never the password', async () => {
    const wrong = server.url.replace('rediss://', 'rediss://fleet:not-the-password@');
    const { error } = await attempt(wrong, tls);
    assert.ok(error instanceof ControlPlaneError, String(error));
    assert.match(error.message, /refused the user 'fleet' \(WRONGPASS/);
    assert.ok(!error.message.includes('not-the-password'), error.message);
  });

  it('with the wrong CA, or none: the certificate is not trusted, set REDIS_TLS_CA_FILE', async () => {
    for (const t of [{ caFile: wrongCa.caFile }, undefined]) {
      const { error } = await attempt(url, t);
      assert.ok(error instanceof ControlPlaneError, String(error));
      assert.match(error.message, /TLS certificate is not trusted \([A-Z_]+: .*\): set REDIS_TLS_CA_FILE to the PEM file of the CA that signed it/);
      assert.ok(!error.message.includes(password), error.message);
    }
  });

  it('the name the certificate holds: localhost works, another name is refused unless REDIS_TLS_SERVERNAME says it', async () => {
    const byName = url.replace('127.0.0.1', 'localhost');
    const ok = await attempt(byName, tls);
    assert.equal(ok.error, undefined);
    open.push(ok.redis);
    const bad = await attempt(url, { ...tls, servername: 'redis.example.com' });
    assert.match(String(bad.error?.message), /not for this host .*REDIS_TLS_SERVERNAME/);
  });

  it('a server that wants client certificates: refused without one, ready with REDIS_TLS_CERT_FILE/KEY_FILE', async () => {
    const mtlsUrl = mtls.url.replace('rediss://', `rediss://fleet:${password}@`);
    const without = await attempt(mtlsUrl, tls);
    assert.ok(without.error, 'connected without a client certificate');
    assert.match(without.error.message, /refused this client's TLS certificate .*set REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE/);
    const withCert = await attempt(mtlsUrl, { ...tls, certFile: certs.certs.client.certFile, keyFile: certs.certs.client.keyFile });
    assert.equal(withCert.error, undefined);
    open.push(withCert.redis);
    assert.equal(await withCert.redis.ping(), 'PONG');
  });

  it('a restart keeps TLS and the ACL (they are kept in the folder)', async () => {
    await server.restart();
    const again = await attempt(url, tls);
    assert.equal(again.error, undefined);
    open.push(again.redis);
    assert.equal(await again.redis.ping(), 'PONG');
    const noPass = await attempt(server.url, tls);
    assert.match(String(noPass.error?.message), /NOAUTH/);
    // The ACL file (it holds the password) is private to its owner.
    assert.equal(statSync(join(server.dir, 'users.acl')).mode & 0o777, 0o600);
  });
});
