import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { resolveServices, type S3Config } from '@tensorfleet/infra';
import { CoordinatorClient } from '../lib/api-client';
import { appEntry, freePort, startProcess, waitUntil, type ManagedProcess } from '../lib/processes';

export interface LocalClusterOptions {
  /** Worker processes to start (one per core on a CPU host). Default 2. */
  workers?: number;
  /** Where process logs go. Default a new folder under the OS temp dir. */
  logDir?: string;
  /** Redis key prefix and BullMQ prefix of this cluster. Default `tf`. */
  prefix?: string;
  /** Extra environment for every worker (e.g. FLEET_BACKEND). */
  workerEnv?: NodeJS.ProcessEnv;
  /** Extra environment of the coordinator (e.g. FLEET_CONCURRENCY). */
  coordinatorEnv?: NodeJS.ProcessEnv;
  /** Start a private Redis and S3 even when REDIS_URL / S3_ENDPOINT are set (benchmarks measure them). */
  privateServices?: boolean;
  /** Progress messages. */
  log?: (msg: string) => void;
}

/**
 * Redis, an S3 server, a coordinator and N workers on this machine, each a real process.
 * Redis and S3 come from REDIS_URL / S3_ENDPOINT when set, otherwise private ones are
 * started on free ports; `stop()` stops only what was started here.
 */
export class LocalCluster {
  readonly workers: ManagedProcess[] = [];
  /** Every coordinator process started here, the first one included (replicas, replacements). */
  readonly coordinators: ManagedProcess[] = [];
  private stopServices: () => Promise<void> = async () => undefined;
  private nextWorker = 0;

  private constructor(
    readonly redisUrl: string,
    readonly s3: S3Config,
    /** The coordinator `client` talks to (the latest started on its port). */
    public coordinator: ManagedProcess,
    readonly client: CoordinatorClient,
    readonly logDir: string,
    readonly prefix: string,
    private readonly opts: LocalClusterOptions,
  ) {}

  static async start(opts: LocalClusterOptions = {}): Promise<LocalCluster> {
    const log = opts.log ?? (() => undefined);
    const logDir = opts.logDir ?? mkdtempSync(join(tmpdir(), 'tensorfleet-'));
    const prefix = opts.prefix ?? 'tf';
    log('starting Redis and the S3 server (or using REDIS_URL / S3_ENDPOINT)');
    const services = await resolveServices({ label: 'cluster', ...(opts.privateServices ? { env: {} } : {}) });
    let cluster: LocalCluster | undefined;
    try {
      const port = await freePort();
      log(`starting the coordinator on http://127.0.0.1:${port}`);
      const coordinator = spawnCoordinator('coordinator', port, services.redisUrl, services.s3, prefix, logDir, opts.coordinatorEnv);
      const client = new CoordinatorClient(`http://127.0.0.1:${port}`);
      cluster = new LocalCluster(services.redisUrl, services.s3, coordinator, client, logDir, prefix, opts);
      cluster.coordinators.push(coordinator);
      cluster.stopServices = services.stop;
      await waitUntil('the coordinator to answer', async () => (await client.listWorkers(), true), 60_000, coordinator);
      const n = opts.workers ?? 2;
      log(`starting ${n} worker process${n === 1 ? '' : 'es'}`);
      for (let i = 0; i < n; i++) cluster.addWorker();
      await cluster.waitForWorkers(n);
      return cluster;
    } catch (e) {
      if (cluster) await cluster.stop();
      else await services.stop();
      throw e;
    }
  }

  /**
   * Starts another coordinator process on the same Redis and returns once its API answers: a
   * replica on a port of its own, or, given `client`'s port (after the first one died), the
   * replacement `client` then reaches (it becomes `coordinator`). `env` adds to coordinatorEnv.
   */
  async addCoordinator(opts: { port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<{ proc: ManagedProcess; client: CoordinatorClient; port: number }> {
    const port = opts.port ?? await freePort();
    const proc = spawnCoordinator(`coordinator-${this.coordinators.length}`, port, this.redisUrl, this.s3, this.prefix, this.logDir, { ...this.opts.coordinatorEnv, ...opts.env });
    this.coordinators.push(proc);
    const client = new CoordinatorClient(`http://127.0.0.1:${port}`);
    await waitUntil(`coordinator on port ${port} to answer`, async () => (await client.listWorkers(), true), 60_000, proc);
    if (client.baseUrl === this.client.baseUrl) this.coordinator = proc;
    return { proc, client, port };
  }

  /** Starts one more worker process; it registers itself in Redis. */
  addWorker(env: NodeJS.ProcessEnv = {}): ManagedProcess {
    const id = `worker-${this.nextWorker++}`;
    const proc = startProcess(id, appEntry('@tensorfleet/worker'), {
      WORKER_ID: `${this.prefix}-${id}-${process.pid}`,
      ...serviceEnv(this.redisUrl, this.s3, this.prefix),
      ...this.opts.workerEnv,
      ...env,
    }, this.logDir);
    this.workers.push(proc);
    return proc;
  }

  async waitForWorkers(n: number, timeoutMs = 60_000): Promise<void> {
    await waitUntil(`${n} workers to register`, async () => {
      const dead = this.workers.find((w) => !w.running);
      if (dead) throw new Error(`${dead.name} exited during start-up; see ${dead.logFile}`);
      const ws = await this.client.listWorkers();
      return ws.filter((w) => w.alive && w.state === 'idle').length >= n;
    }, timeoutMs);
  }

  async stop(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
    await Promise.all(this.coordinators.map((c) => c.stop()));
    await this.stopServices();
  }
}

function spawnCoordinator(name: string, port: number, redisUrl: string, s3: S3Config, prefix: string, logDir: string, env: NodeJS.ProcessEnv = {}): ManagedProcess {
  return startProcess(name, appEntry('@tensorfleet/coordinator'), {
    PORT: String(port),
    HOST: '127.0.0.1',
    ...serviceEnv(redisUrl, s3, prefix),
    ...env,
  }, logDir);
}

export function serviceEnv(redisUrl: string, s3: S3Config, prefix: string): NodeJS.ProcessEnv {
  return {
    REDIS_URL: redisUrl,
    FLEET_PREFIX: prefix,
    TF_S3: JSON.stringify(s3),
    S3_ENDPOINT: `${s3.useSSL ? 'https' : 'http'}://${s3.endPoint}:${s3.port}`,
    S3_ACCESS_KEY: s3.accessKey,
    S3_SECRET_KEY: s3.secretKey,
    S3_REGION: s3.region,
    ...(s3.caFile ? { S3_CA_FILE: s3.caFile } : {}),
  };
}
