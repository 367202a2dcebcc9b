import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { redisTlsEnv } from '@tensorfleet/control';
import { freePort, tlsCertificates } from '@tensorfleet/infra';
import { CoordinatorClient } from '../lib/api-client';
import { serviceEnv } from '../cluster/local-cluster';
import { appEntry } from '../lib/processes';
import { clusterPaths, readRedisPassword, readSettings, readToken, writeCurrentDir, writeRedisPassword, writeSettings, writeToken, type ClusterPaths, type ClusterSettings } from './cluster-dir';
import { nodeMarker, processStates, workerId, workerIds } from './cluster-state';
import { livePid, startDaemon } from './daemon-process';
import { startRedisAof, type RedisServerTls } from './redis-aof';
import { s3Config, startSwiftStore, swiftStoreUp } from './swift-store';
import { stopCluster } from './cluster-down';
import { defaultWorkers } from './worker-count';

export interface UpOptions {
  dir: string;
  /** Default: the count recorded in the folder, else one per GPU, else one per core. */
  workers?: number;
  /** Coordinator port. Default: the one recorded in the folder when free, else a free one. */
  port?: number;
  /**
   * Redis over TLS only and S3 over https, with a CA made for the cluster in `dir/tls`. Chosen at
   * the first start in `dir` and kept; asking for it on a cluster made without it is an error.
   */
  tls?: boolean;
  /** How long to wait for the coordinator and every worker. Default 180 s. */
  timeoutMs?: number;
  log: (msg: string) => void;
}

export interface UpResult {
  settings: ClusterSettings;
  /** Everything was running already: nothing was started. */
  alreadyRunning: boolean;
  token: string;
}

const PREFIX = 'tf';

/**
 * Starts Redis (AOF), Swift, the coordinator and the workers of the cluster in `dir`, each in
 * its own session so that it keeps running after this command, and records how to reach them.
 * Ports recorded by an earlier start are taken again when free, so URLs stay the same.
 */
export async function startCluster(opts: UpOptions): Promise<UpResult> {
  const paths = clusterPaths(opts.dir);
  const release = takeStartLock(paths);
  try {
    return await startLocked(paths, opts);
  } finally {
    release();
  }
}

/**
 * Two `fleet up` on one folder at once would start two of everything on the same files: the
 * second one waits for nothing and says who is at it. A lock whose process is gone is stale.
 */
function takeStartLock(paths: ClusterPaths): () => void {
  const lock = join(paths.dir, 'up.lock');
  mkdirSync(paths.dir, { recursive: true });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const holder = Number(readFileSync(lock, 'utf8').trim());
      if (holder > 0 && processExists(holder)) throw new Error(`another \`fleet up\` (pid ${holder}) is starting the cluster in ${paths.dir}: wait for it, then \`fleet status\``);
      rmSync(lock, { force: true });
    }
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function startLocked(paths: ClusterPaths, opts: UpOptions): Promise<UpResult> {
  const log = opts.log;
  if (opts.workers !== undefined && !(Number.isInteger(opts.workers) && opts.workers >= 1)) {
    throw new Error(`--workers must be a whole number of at least 1, got ${opts.workers}`);
  }
  if (opts.port !== undefined && !(Number.isInteger(opts.port) && opts.port >= 1 && opts.port <= 65535)) {
    throw new Error(`--port must be a port number 1..65535, got ${opts.port}`);
  }
  const previous = readSettings(paths.dir);
  const token = readToken(paths.dir) ?? randomBytes(24).toString('hex');
  // Redis asks for a password too: anyone else on this machine could otherwise reach the control plane.
  const redisPassword = readRedisPassword(paths.dir) ?? randomBytes(24).toString('hex');

  if (previous) {
    const running = processStates(paths.dir, previous).filter((p) => p.name !== 's3' && p.alive);
    const s3Up = await swiftStoreUp(paths);
    const all = running.length === 2 + previous.workers && s3Up;
    if (all) {
      if (opts.workers !== undefined && opts.workers !== previous.workers) {
        throw new Error(`a cluster with ${previous.workers} workers already runs in ${paths.dir}: \`fleet down\` first to start it with ${opts.workers}`);
      }
      if (opts.port !== undefined && opts.port !== previous.ports.coordinator) {
        throw new Error(`a cluster already runs in ${paths.dir} with its coordinator on port ${previous.ports.coordinator}: \`fleet down\` first to move it to ${opts.port}`);
      }
      writeCurrentDir(paths.dir);
      return { settings: previous, alreadyRunning: true, token };
    }
    if (running.length > 0 || s3Up) {
      log(`a cluster in ${paths.dir} is partly running (${running.map((p) => p.name).join(', ') || 's3'}): stopping it to start it whole`);
      await stopCluster({ dir: paths.dir, log, keepPointer: true });
    }
  }

  const wasTls = previous ? !!previous.redisTls : undefined;
  if (opts.tls && wasTls === false) throw new Error(`the cluster in ${paths.dir} was made without --tls (its Swift keeps plain http): \`fleet down --purge\` it, or use another --dir`);
  const tls = opts.tls || wasTls ? await clusterCertificates(paths) : undefined;
  const workers = opts.workers ?? previous?.workers ?? defaultWorkers().count;
  const gpus = defaultWorkers().gpus;
  const ports = {
    coordinator: opts.port ?? (await reusablePort(previous?.ports.coordinator)),
    redis: await reusablePort(previous?.ports.redis),
    s3: await reusablePort(previous?.ports.s3),
  };
  if (opts.port !== undefined && !(await portFree(opts.port))) throw new Error(`port ${opts.port} is taken: pass another --port, or leave it out to use a free one`);
  const settings: ClusterSettings = {
    dir: paths.dir,
    coordinatorUrl: `http://127.0.0.1:${ports.coordinator}`,
    redisUrl: `redis${tls ? 's' : ''}://:${redisPassword}@127.0.0.1:${ports.redis}`,
    ...(tls ? { redisTls: { caFile: tls.caFile } } : {}),
    s3: s3Config(ports.s3, tls?.caFile),
    prefix: PREFIX,
    ports,
    workers,
    startedAt: new Date().toISOString(),
  };
  mkdirSync(paths.logs, { recursive: true });
  writeToken(paths.dir, token);
  writeRedisPassword(paths.dir, redisPassword);
  // Written before anything starts, so that `fleet status` and `fleet down` find what did.
  writeSettings(settings);
  writeCurrentDir(paths.dir);

  try {
    log(`starting Redis (append-only file in ${paths.redisData}) and the S3 server (objects in ${paths.s3Data})`);
    // Both settled before going on: a stop after one failed must not race the other's start.
    const started = await Promise.allSettled([startRedisAof(paths, ports.redis, redisPassword, tls), startSwiftStore(paths, ports.s3, tls)]);
    for (const r of started) if (r.status === 'rejected') throw r.reason;
    log(`starting the coordinator on ${settings.coordinatorUrl}`);
    const env = { ...process.env, ...serviceEnv(settings.redisUrl, settings.s3, PREFIX), ...redisTlsEnv(settings.redisTls) };
    startNode(paths, 'coordinator', '@tensorfleet/coordinator', {
      ...env, PORT: String(ports.coordinator), HOST: '127.0.0.1', FLEET_API_TOKEN: token, FLEET_MAX_WORKERS: String(workers),
    });
    const client = new CoordinatorClient(settings.coordinatorUrl, token);
    await waitFor('the coordinator to be ready (GET /readyz)', opts.timeoutMs ?? 180_000, paths, ['coordinator'], async () => {
      const res = await fetch(`${settings.coordinatorUrl}/readyz`, { signal: AbortSignal.timeout(5000) });
      return res.ok;
    });
    log(`starting ${workers} worker process${workers === 1 ? '' : 'es'}${gpus ? ` (one per GPU: ${gpus})` : ''}`);
    for (let i = 0; i < workers; i++) {
      startNode(paths, `worker-${i}`, '@tensorfleet/worker', {
        ...env, WORKER_ID: workerId(i), ...(gpus ? { CUDA_VISIBLE_DEVICES: String(i) } : {}),
      });
    }
    const ids = new Set(workerIds(workers));
    let last = -1;
    await waitFor(`${workers} workers to register`, opts.timeoutMs ?? 180_000, paths, ['coordinator', ...Array.from({ length: workers }, (_, i) => `worker-${i}`)], async () => {
      const n = (await client.listWorkers()).filter((w) => ids.has(w.id) && w.alive).length;
      if (n !== last) log(`${n}/${workers} workers registered`);
      last = n;
      return n >= workers;
    });
  } catch (e) {
    log(`start-up failed: stopping what started (logs stay in ${paths.logs})`);
    await stopCluster({ dir: paths.dir, log: () => undefined }).catch(() => undefined);
    throw e;
  }
  return { settings, alreadyRunning: false, token };
}

/** The cluster's CA and the certificate Redis and Swift serve (for 127.0.0.1), made once in dir/tls. */
async function clusterCertificates(paths: ClusterPaths): Promise<RedisServerTls> {
  if (!existsSync(join(paths.tls, 'server.pem'))) await tlsCertificates({ dir: paths.tls, names: ['server'] });
  return { certFile: join(paths.tls, 'server.pem'), keyFile: join(paths.tls, 'server.key'), caFile: join(paths.tls, 'ca.pem') };
}

function startNode(paths: ClusterPaths, name: string, app: '@tensorfleet/coordinator' | '@tensorfleet/worker', env: NodeJS.ProcessEnv): void {
  const [key, value] = nodeMarker(paths.dir, name).split(/=(.*)/s);
  startDaemon({
    name,
    command: process.execPath,
    args: ['--enable-source-maps', appEntry(app)],
    env: { ...env, [key]: value },
    logFile: join(paths.logs, `${name}.log`),
    runDir: paths.run,
    marker: nodeMarker(paths.dir, name),
  });
}

/** Polls `probe` until true; fails early, naming the log, when one of `watched` exits. */
async function waitFor(what: string, timeoutMs: number, paths: ClusterPaths, watched: string[], probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const name of watched) {
      if (!livePid(paths.run, name, nodeMarker(paths.dir, name))) {
        throw new Error(`${name} exited while waiting for ${what}; see ${join(paths.logs, `${name}.log`)}`);
      }
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; see the logs in ${paths.logs}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function reusablePort(previous: number | undefined): Promise<number> {
  if (previous && (await portFree(previous))) return previous;
  return freePort();
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}
