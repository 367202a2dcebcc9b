import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { S3Config } from '@tensorfleet/infra';

/**
 * The folder of a `fleet up` cluster and what is in it:
 *   cluster.json   the connection settings every other `fleet` command reads (mode 0600)
 *   api-token      the coordinator's bearer token (mode 0600)
 *   redis-password the password of Redis's default user (mode 0600); also in cluster.json's redisUrl
 *   redis.conf     Redis's `requirepass` (mode 0600), so the password is on no command line
 *   tls/           with `fleet up --tls`: the cluster's private CA (ca.pem) and its certificate for Redis and S3
 *   redis/         Redis's append-only file
 *   s3/            the Swift server: configs, rings, objects, its own logs and PIDs
 *   logs/          redis.log, coordinator.log, worker-N.log
 *   run/           PID files of Redis, the coordinator and the workers
 */
export interface ClusterPaths {
  dir: string;
  settings: string;
  token: string;
  redisPassword: string;
  redisConf: string;
  tls: string;
  redisData: string;
  s3Data: string;
  logs: string;
  run: string;
}

export function clusterPaths(dir: string): ClusterPaths {
  const d = resolve(dir);
  return {
    dir: d,
    settings: join(d, 'cluster.json'),
    token: join(d, 'api-token'),
    redisPassword: join(d, 'redis-password'),
    redisConf: join(d, 'redis.conf'),
    tls: join(d, 'tls'),
    redisData: join(d, 'redis'),
    s3Data: join(d, 's3'),
    logs: join(d, 'logs'),
    run: join(d, 'run'),
  };
}

/** What `fleet up` records for the other commands (and for the next `fleet up` on the folder). */
export interface ClusterSettings {
  dir: string;
  coordinatorUrl: string;
  redisUrl: string;
  /** With `fleet up --tls`: the CA every process trusts for rediss:// (REDIS_TLS_CA_FILE); S3's is s3.caFile. */
  redisTls?: { caFile: string };
  s3: S3Config;
  /** Redis key prefix and BullMQ prefix. */
  prefix: string;
  ports: { coordinator: number; redis: number; s3: number };
  workers: number;
  /** ISO time of the last `fleet up`. */
  startedAt: string;
}

function home(env: NodeJS.ProcessEnv): string {
  return env.HOME || homedir();
}

/** `~/.tensorfleet/current`: holds the folder of the cluster `fleet up` started last. */
export function currentPointer(env: NodeJS.ProcessEnv = process.env): string {
  return join(home(env), '.tensorfleet', 'current');
}

/** `$XDG_STATE_HOME/tensorfleet/cluster` when XDG_STATE_HOME is set, else `~/.tensorfleet/cluster`. */
export function defaultClusterDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.XDG_STATE_HOME ? join(env.XDG_STATE_HOME, 'tensorfleet', 'cluster') : join(home(env), '.tensorfleet', 'cluster');
}

/** The folder `fleet status` / `fleet down` act on without --dir: the current cluster's, else the default. */
export function selectedClusterDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return resolve(flag);
  return readCurrentDir(env) ?? defaultClusterDir(env);
}

export function readCurrentDir(env: NodeJS.ProcessEnv = process.env): string | null {
  try {
    return readFileSync(currentPointer(env), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

export function writeCurrentDir(dir: string, env: NodeJS.ProcessEnv = process.env): void {
  writeFileAtomic(currentPointer(env), `${resolve(dir)}\n`, 0o644);
}

/** Removes the pointer when it names `dir`, so that commands stop using a cluster that is down. */
export function clearCurrentDir(dir: string, env: NodeJS.ProcessEnv = process.env): void {
  if (readCurrentDir(env) === resolve(dir)) rmSync(currentPointer(env), { force: true });
}

export function readSettings(dir: string): ClusterSettings | null {
  const file = clusterPaths(dir).settings;
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as ClusterSettings;
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}): remove it and run \`fleet up\` again`);
  }
}

export function writeSettings(settings: ClusterSettings): void {
  // 0600: it holds the S3 secret key.
  writeFileAtomic(clusterPaths(settings.dir).settings, `${JSON.stringify(settings, null, 2)}\n`, 0o600);
}

export function readToken(dir: string): string | null {
  try {
    return readFileSync(clusterPaths(dir).token, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

export function writeToken(dir: string, token: string): void {
  writeFileAtomic(clusterPaths(dir).token, `${token}\n`, 0o600);
}

export function readRedisPassword(dir: string): string | null {
  try {
    return readFileSync(clusterPaths(dir).redisPassword, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** The password, and the redis.conf that sets it: both 0600, beside the API token. */
export function writeRedisPassword(dir: string, password: string): void {
  if (!/^[A-Za-z0-9]+$/.test(password)) throw new Error('the Redis password of `fleet up` must be letters and digits (it goes into a URL and redis.conf unquoted)');
  const paths = clusterPaths(dir);
  writeFileAtomic(paths.redisPassword, `${password}\n`, 0o600);
  writeFileAtomic(paths.redisConf, `# written by fleet up: the default user's password (also in redis-password and cluster.json)\nrequirepass ${password}\n`, 0o600);
}

/** The settings for printing: the Redis password replaced by *** (it is in redis-password). */
export function printableSettings(s: ClusterSettings): ClusterSettings {
  return { ...s, redisUrl: s.redisUrl.replace(/^(rediss?:\/\/)([^@/]*)@/, (_m, scheme: string, auth: string) => `${scheme}${auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : ''}:***@`) };
}

/** Written whole or not at all, so a reader never sees half a file; `mode` also when it existed. */
function writeFileAtomic(file: string, text: string, mode: number): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

/**
 * The settings of the cluster `fleet up` started last, for the client commands; null when
 * there is none (or `fleet down` stopped it).
 */
export function currentClusterSettings(env: NodeJS.ProcessEnv = process.env): ClusterSettings | null {
  const dir = readCurrentDir(env);
  if (!dir) return null;
  try {
    return readSettings(dir);
  } catch {
    return null;
  }
}

/**
 * The stored API token for `baseUrl`: only when it is the current cluster's coordinator, so a
 * `--coordinator` elsewhere never receives it.
 */
export function storedTokenFor(baseUrl: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const settings = currentClusterSettings(env);
  if (!settings || stripSlash(settings.coordinatorUrl) !== stripSlash(baseUrl)) return undefined;
  return readToken(settings.dir) ?? undefined;
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
