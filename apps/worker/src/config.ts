import { hostname } from 'node:os';
import { curveModeFromEnv, type CurveMode } from '@tensorfleet/collective';
import { redisTlsFromEnv, type RedisTls } from '@tensorfleet/control';

/** Everything a worker process reads from its environment, read once at start-up. */
export interface WorkerConfig {
  /** Redis of the control plane, `rediss://` for TLS, `USER:PASSWORD@` for an ACL user. Env `REDIS_URL`; default redis://127.0.0.1:6379. */
  redisUrl: string;
  /** TLS files of a rediss:// URL. Env `REDIS_TLS_CA_FILE`, `REDIS_TLS_CERT_FILE`, `REDIS_TLS_KEY_FILE`, `REDIS_TLS_SERVERNAME`. */
  redisTls?: RedisTls;
  /** Key prefix in Redis. Env `FLEET_PREFIX`; default `tf`. */
  prefix: string;
  /** S3 endpoint and keys (datasets, checkpoints). Env `TF_S3` (JSON) or `S3_ENDPOINT` + keys [+ `S3_CA_FILE` for https]. */
  s3: { endPoint: string; port: number; useSSL: boolean; accessKey: string; secretKey: string; region: string; caFile?: string };
  /** Registry id. Env `WORKER_ID`; default `<hostname>-<pid>`. */
  workerId: string;
  /** Address the collective socket binds to. Env `FLEET_BIND_HOST`; default 127.0.0.1. */
  bindHost: string;
  /** Which collective endpoints demand CURVE. Env `FLEET_COLLECTIVE_CURVE`: tcp (default), all, off (0). */
  collectiveCurve: CurveMode;
  /** Backend override (`tensorflow` | `onednn` | `wasm` | `cpu`). Env `FLEET_BACKEND`. */
  backend?: 'tensorflow' | 'onednn' | 'wasm' | 'cpu';
  /** Heartbeat period; the alive key lives three periods. Env `FLEET_HEARTBEAT_MS`; default 2000. */
  heartbeatMs: number;
  /** Lines kept per job in its Redis log stream (approximately; XADD MAXLEN ~). Env `FLEET_LOG_MAXLEN`; default 10000. */
  logsMaxLen: number;
  /** Deadline of every collective operation. Env `FLEET_COLLECTIVE_TIMEOUT_MS`; default 60000. */
  collectiveTimeoutMs: number;
  /** Exit after this many runs (tests, demo); 0 = serve forever. Env `FLEET_MAX_RUNS`. */
  maxRuns: number;
  /** Debugging and tests: a folder where each rank appends the sample keys of every step (one JSON line each). Env `FLEET_SAMPLE_LOG`. */
  sampleLogDir?: string;
}

export function workerConfigFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  const backend = env.FLEET_BACKEND as WorkerConfig['backend'] | undefined;
  if (backend && !['tensorflow', 'onednn', 'wasm', 'cpu'].includes(backend)) {
    throw new Error(`FLEET_BACKEND=${backend} is not a backend: use tensorflow, onednn, wasm or cpu`);
  }
  const logsMaxLen = Number(env.FLEET_LOG_MAXLEN ?? 10_000);
  if (!Number.isInteger(logsMaxLen) || logsMaxLen < 1) throw new Error(`FLEET_LOG_MAXLEN=${env.FLEET_LOG_MAXLEN} must be a whole number of lines >= 1`);
  const redisTls = redisTlsFromEnv(env);
  return {
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    ...(redisTls ? { redisTls } : {}),
    prefix: env.FLEET_PREFIX ?? 'tf',
    s3: s3FromEnv(env),
    workerId: env.WORKER_ID ?? `${hostname()}-${process.pid}`,
    bindHost: env.FLEET_BIND_HOST ?? '127.0.0.1',
    collectiveCurve: curveModeFromEnv(env.FLEET_COLLECTIVE_CURVE),
    backend,
    heartbeatMs: Number(env.FLEET_HEARTBEAT_MS ?? 2000),
    logsMaxLen,
    collectiveTimeoutMs: Number(env.FLEET_COLLECTIVE_TIMEOUT_MS ?? 60000),
    maxRuns: Number(env.FLEET_MAX_RUNS ?? 0),
    ...(env.FLEET_SAMPLE_LOG ? { sampleLogDir: env.FLEET_SAMPLE_LOG } : {}),
  };
}

function s3FromEnv(env: NodeJS.ProcessEnv): WorkerConfig['s3'] {
  if (env.TF_S3) return JSON.parse(env.TF_S3);
  if (!env.S3_ENDPOINT) {
    throw new Error('No object store configured: set S3_ENDPOINT (e.g. http://127.0.0.1:9000), S3_ACCESS_KEY and S3_SECRET_KEY');
  }
  const url = new URL(env.S3_ENDPOINT);
  const useSSL = url.protocol === 'https:';
  return {
    endPoint: url.hostname,
    port: Number(url.port || (useSSL ? 443 : 80)),
    useSSL,
    accessKey: env.S3_ACCESS_KEY ?? '',
    secretKey: env.S3_SECRET_KEY ?? '',
    region: env.S3_REGION ?? 'us-east-1',
    ...(env.S3_CA_FILE?.trim() ? { caFile: env.S3_CA_FILE.trim() } : {}),
  };
}
