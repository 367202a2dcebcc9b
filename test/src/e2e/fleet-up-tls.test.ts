// `fleet up --tls` as a user runs it, each command a separate `fleet` process: Redis speaks
// only TLS and S3 only https, with a CA made for the cluster in its folder; `fleet status`,
// `fleet ingest` and `fleet submit --follow` work with no variable set, since the stored
// settings carry the CA. A temp HOME and cluster folder keep it away from the real home.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { openRedis, waitForRedis } from '@tensorfleet/control';

const FLEET = require.resolve('@tensorfleet/cli/bin/fleet.js');

interface Run { code: number; stdout: string; stderr: string }

describe('fleet up --tls: Redis over TLS only, S3 over https', { timeout: 6 * 60_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'tf-fleetup-tls-'));
  const home = join(root, 'home');
  const dir = join(root, 'cluster');
  const images = join(root, 'images');
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const k of ['XDG_STATE_HOME', 'FLEET_COORDINATOR', 'FLEET_API_TOKEN', 'REDIS_URL', 'S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'S3_CA_FILE', 'TF_S3', 'REDIS_TLS_CA_FILE']) delete env[k];

  const fleet = (args: string[], timeoutMs = 240_000): Promise<Run> => new Promise((resolve) => {
    execFile(process.execPath, [FLEET, ...args], { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
  const ok = async (args: string[]): Promise<string> => {
    const r = await fleet(args);
    assert.equal(r.code, 0, `fleet ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
    return r.stdout;
  };
  const settings = () => JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8'));

  before(async () => {
    mkdirSync(home, { recursive: true });
    for (const [cls, rgb] of [['red', [200, 40, 40]], ['blue', [40, 40, 200]]] as const) {
      mkdirSync(join(images, cls), { recursive: true });
      for (let i = 0; i < 8; i++) {
        const img = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: rgb[0], g: rgb[1] + i, b: rgb[2] } } }).jpeg().toBuffer();
        writeFileSync(join(images, cls, `${i}.jpg`), img);
      }
    }
  });

  after(async () => {
    await fleet(['down', '--dir', dir, '--purge']);
    rmSync(root, { recursive: true, force: true });
  });

  it('starts with rediss:// and https, and every process reaches them', async () => {
    const out = JSON.parse(await ok(['up', '--tls', '--workers', '1', '--dir', dir, '--json']));
    assert.match(out.redisUrl, /^rediss:\/\/:\*\*\*@127\.0\.0\.1:\d+$/);
    const s = settings();
    assert.equal(s.redisTls.caFile, join(dir, 'tls', 'ca.pem'));
    assert.deepEqual([s.s3.useSSL, s.s3.caFile], [true, join(dir, 'tls', 'ca.pem')]);
    const status = await fleet(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const st = JSON.parse(status.stdout);
    assert.deepEqual(st.processes.map((p: { alive: boolean }) => p.alive), [true, true, true, true]);
    assert.equal(st.ready.ready, true);

    // The plain port is off: a plain PING gets no PONG; with the CA and the password, Redis answers.
    const plain = await new Promise<string>((resolve) => {
      const sock = connect(s.ports.redis, '127.0.0.1', () => sock.write('PING\r\n'));
      let got = '';
      sock.on('data', (d) => (got += d));
      sock.on('error', () => resolve(got));
      sock.on('close', () => resolve(got));
      sock.setTimeout(5000, () => sock.destroy());
    });
    assert.doesNotMatch(plain, /PONG/);
    const redis = openRedis(s.redisUrl, s.redisTls, 'test', () => undefined);
    await waitForRedis(redis, s.redisUrl);
    assert.equal(await redis.ping(), 'PONG');
    redis.disconnect();
  });

  it('fleet ingest and fleet submit --follow use it with no variables set', async () => {
    const ingest = await ok(['ingest', 'folder', images, '--bucket', 'photos', '--prefix', 'colours', '--samples-per-shard', '8']);
    assert.match(ingest, /16 samples/);
    writeFileSync(join(root, 'job.yaml'), [
      'name: colours-tls', 'model: { name: resnet8 }', 'dataset: { bucket: photos, prefix: colours }', 'parallelism: { dataParallel: 1 }',
      'batchSize: 8', 'steps: 3', 'optimizer: { type: sgd, lr: 0.05 }', 'augmentation: small', 'checkpoint: { intervalSteps: 3, keep: 1 }', 'evaluation: { atEnd: false }',
    ].join('\n'));
    const r = await fleet(['submit', join(root, 'job.yaml'), '--follow', '--json']);
    assert.equal(r.code, 0, `${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /"state":\s*"completed"/);
  });
});
