// `fleet up` / `fleet status` / `fleet down` as a user runs them, each a separate `fleet`
// process: a background cluster of real processes (Redis with AOF, Swift, coordinator, two
// workers) trains a folder of images, is stopped, and comes back with its jobs, checkpoints
// and dataset. A temp HOME and cluster folder keep it away from the real home.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { openRedis, waitForRedis } from '@tensorfleet/control';
import { ObjectStore, readManifest } from '@tensorfleet/data';
import { loadCheckpoint } from '@tensorfleet/training';

const FLEET = require.resolve('@tensorfleet/cli/bin/fleet.js');

interface Run { code: number; stdout: string; stderr: string }

describe('fleet up, status, down: a local cluster that keeps its data', { timeout: 8 * 60_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'tf-fleetup-'));
  const home = join(root, 'home');
  const dir = join(root, 'cluster');
  const images = join(root, 'images');
  // The user's shell: no cluster variables, so every command finds the cluster through HOME.
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  for (const k of ['XDG_STATE_HOME', 'FLEET_COORDINATOR', 'FLEET_API_TOKEN', 'REDIS_URL', 'S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'TF_S3']) delete env[k];
  let jobId = '';
  let firstPids: number[] = [];

  const fleet = (args: string[], timeoutMs = 240_000): Promise<Run> => new Promise((resolve) => {
    execFile(process.execPath, [FLEET, ...args], { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
  const ok = async (args: string[], timeoutMs?: number): Promise<string> => {
    const r = await fleet(args, timeoutMs);
    assert.equal(r.code, 0, `fleet ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
    return r.stdout;
  };
  const settings = () => JSON.parse(readFileSync(join(dir, 'cluster.json'), 'utf8'));
  const token = () => readFileSync(join(dir, 'api-token'), 'utf8').trim();
  const api = async (path: string, withToken = true) => {
    const res = await fetch(settings().coordinatorUrl + path, { headers: withToken ? { authorization: `Bearer ${token()}` } : {} });
    return { status: res.status, body: await res.json() as any };
  };
  /** Every PID file of the cluster: Redis, coordinator, workers, and Swift's four servers and memcached. */
  const allPids = (): number[] => ['run', 's3'].flatMap((sub) => readdirSync(join(dir, sub))
    .filter((f) => f.endsWith('.pid')).map((f) => Number(readFileSync(join(dir, sub, f), 'utf8'))));
  const running = (pid: number) => {
    try {
      process.kill(pid, 0);
      return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
    } catch {
      return false;
    }
  };

  before(async () => {
    mkdirSync(home, { recursive: true });
    // Two classes a small ResNet tells apart in a few steps: reddish and bluish 32x32 photos.
    for (const [split, n] of [['train', 24], ['val', 8]] as const) {
      for (const [cls, rgb] of [['red', [200, 40, 40]], ['blue', [40, 40, 200]]] as const) {
        mkdirSync(join(images, split, cls), { recursive: true });
        for (let i = 0; i < n; i++) {
          const jitter = (v: number) => Math.max(0, Math.min(255, v + ((i * 37) % 50) - 25));
          const img = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: jitter(rgb[0]), g: jitter(rgb[1]), b: jitter(rgb[2]) } } }).jpeg().toBuffer();
          writeFileSync(join(images, split, cls, `${i}.jpg`), img);
        }
      }
    }
  });

  after(async () => {
    // Whatever happened, leave no process behind, and no data.
    await fleet(['down', '--dir', dir]);
    rmSync(root, { recursive: true, force: true });
  });

  it('fleet up --workers 2 starts the cluster in the background and records how to reach it', async () => {
    const out = JSON.parse(await ok(['up', '--workers', '2', '--dir', dir, '--json']));
    assert.equal(out.alreadyRunning, false);
    assert.equal(out.workers, 2);
    assert.match(out.coordinatorUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(readFileSync(join(home, '.tensorfleet', 'current'), 'utf8').trim(), dir);
    assert.equal(statSync(join(dir, 'api-token')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'cluster.json')).mode & 0o777, 0o600);
    assert.ok(token().length >= 32);
    // The API needs the token; the CLI sends it (below) without being told.
    assert.equal((await api('/jobs', false)).status, 401);
    // Redis wants a password too, kept beside the token (0600) and never printed.
    assert.equal(statSync(join(dir, 'redis-password')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'redis.conf')).mode & 0o777, 0o600);
    const password = readFileSync(join(dir, 'redis-password'), 'utf8').trim();
    assert.ok(password.length >= 32);
    const redisPort = settings().ports.redis;
    assert.equal(settings().redisUrl, `redis://:${password}@127.0.0.1:${redisPort}`);
    assert.ok(!JSON.stringify(out).includes(password), 'fleet up --json printed the Redis password');
    const bareUrl = `redis://127.0.0.1:${redisPort}`;
    const bare = openRedis(bareUrl, undefined, 'test', () => undefined);
    await assert.rejects(waitForRedis(bare, bareUrl), /wants a user and password \(NOAUTH/);
    bare.disconnect();
  });

  it('fleet status lists every process with its PID, port and log, the coordinator ready and both workers registered', async () => {
    const r = await fleet(['status', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const status = JSON.parse(r.stdout);
    assert.equal(status.up, true);
    assert.deepEqual(status.processes.map((p: any) => p.name), ['redis', 's3', 'coordinator', 'worker-0', 'worker-1']);
    for (const p of status.processes) {
      assert.equal(p.alive, true, `${p.name} is not alive`);
      assert.ok(running(p.pid), `${p.name}: pid ${p.pid} does not run`);
      assert.ok(p.log.startsWith(dir), `${p.name} logs outside the cluster folder: ${p.log}`);
    }
    assert.equal(status.processes.find((p: any) => p.name === 'coordinator').port, settings().ports.coordinator);
    assert.equal(status.ready.ready, true);
    assert.equal(status.registered.alive, 2);
    const text = await ok(['status']);
    assert.match(text, /worker-1\s+\d+\s+yes/);
    assert.match(text, /2\/2 registered/);
    firstPids = allPids();
    assert.deepEqual(status.processes.map((p: any) => p.pid).filter((p: number) => !firstPids.includes(p)), [], 'fleet status shows PIDs other than the PID files hold');
  });

  it('a second fleet up while it runs says so, starts nothing and exits 0; one while another starts it is refused', async () => {
    // a `fleet up` still at work holds D/up.lock (here: this test process plays it)
    writeFileSync(join(dir, 'up.lock'), `${process.pid}\n`);
    const racing = await fleet(['up', '--dir', dir]);
    assert.equal(racing.code, 1);
    assert.match(racing.stderr, new RegExp(`another \`fleet up\` \\(pid ${process.pid}\\) is starting`));
    rmSync(join(dir, 'up.lock'));
    const out = await ok(['up', '--dir', dir]);
    assert.match(out, /already runs/);
    assert.deepEqual(allPids(), firstPids);
  });

  it('trains a folder of images: fleet ingest, then fleet submit --follow, with no variables set', async () => {
    const ingest = await ok(['ingest', 'folder', images, '--bucket', 'photos', '--prefix', 'colours', '--samples-per-shard', '16']);
    assert.match(ingest, /train: 48 samples/);
    const spec = join(root, 'job.yaml');
    writeFileSync(spec, [
      'name: colours',
      'model: { name: resnet8 }',
      'dataset: { bucket: photos, prefix: colours }',
      'parallelism: { dataParallel: 2 }',
      'batchSize: 8',
      'epochs: 2',
      'optimizer: { type: sgd, lr: 0.05, momentum: 0.9 }',
      'checkpoint: { intervalSteps: 2, keep: 2 }',
      'seed: 1',
    ].join('\n'));
    const end = JSON.parse((await ok(['submit', spec, '--follow', '--json'])).trim().split('\n').pop()!);
    assert.equal(end.state, 'completed', JSON.stringify(end));
    assert.equal(end.step, end.totalSteps);
    jobId = end.id;
    const jobs = JSON.parse(await ok(['jobs', '--json']));
    assert.deepEqual(jobs.map((j: any) => j.id), [jobId]);
    const ckpts = await api(`/jobs/${jobId}/checkpoints`);
    assert.equal(ckpts.status, 200);
    assert.ok(ckpts.body.length >= 1, 'no committed checkpoint');
  });

  it('fleet down stops every process and removes the PID files; fleet status then says it is down', async () => {
    assert.ok(firstPids.length >= 9, `expected redis, 5 Swift processes, coordinator, 2 workers: ${firstPids}`);
    const out = await ok(['down', '--dir', dir]);
    assert.match(out, /stopped/);
    const left = firstPids.filter(running);
    assert.deepEqual(left, [], `still running after fleet down: ${left}`);
    assert.deepEqual(readdirSync(join(dir, 'run')).filter((f) => f.endsWith('.pid')), []);
    assert.deepEqual(readdirSync(join(dir, 's3')).filter((f) => f.endsWith('.pid')), []);
    assert.equal(existsSync(join(home, '.tensorfleet', 'current')), false);
    const status = await fleet(['status', '--dir', dir, '--json']);
    assert.equal(status.code, 3);
    assert.equal(JSON.parse(status.stdout).up, false);
  });

  it('fleet up again on the folder finds the job, its checkpoints and the dataset', async () => {
    const before = settings();
    // the lock of a `fleet up` that died (its process is gone) does not stand in the way
    writeFileSync(join(dir, 'up.lock'), `${spawnSync('true').pid}\n`);
    const up = JSON.parse(await ok(['up', '--dir', dir, '--json']));
    assert.equal(existsSync(join(dir, 'up.lock')), false);
    assert.equal(up.alreadyRunning, false);
    assert.equal(up.workers, 2, 'the worker count of the last start is kept');
    assert.equal(up.coordinatorUrl, before.coordinatorUrl, 'the coordinator came back on its port');
    const jobs = JSON.parse(await ok(['jobs', '--json']));
    assert.deepEqual(jobs.map((j: any) => [j.id, j.state]), [[jobId, 'completed']]);
    const ckpts = await api(`/jobs/${jobId}/checkpoints`);
    assert.ok(ckpts.body.length >= 1, 'the checkpoint catalogue is empty after the restart');
    // The checkpoint's bytes, not only its record, survived: loading checks every part's size.
    const store = new ObjectStore(up.s3);
    const last = ckpts.body[ckpts.body.length - 1];
    const loaded = await loadCheckpoint(store, last.bucket, last.key);
    assert.equal(loaded.manifest.step, last.step);
    const manifest = await readManifest(store, 'photos', 'colours');
    assert.deepEqual(manifest.classes.map((c) => c.name), ['blue', 'red']);
    assert.equal(manifest.splits.train.samples, 48);
    // (fleet up returned only once both workers had registered again)
    const pids = allPids();
    assert.equal(pids.length, firstPids.length);
    await ok(['down']);
    assert.deepEqual(pids.filter(running), []);
  });
});
