import { parseScope, redactRedisUrl, redisTlsFromEnv, type RedisTls } from '@tensorfleet/control';
import { redisUrlFromEnv, s3ConfigFromEnv, type S3Config } from '@tensorfleet/infra';

/** Everything the coordinator is configured with; injected as COORDINATOR_CONFIG. */
export interface CoordinatorOptions {
  /** HTTP port; 0 picks a free one. Default 3000. */
  port?: number;
  /** Interface to listen on. Default 0.0.0.0. */
  host?: string;
  /** Redis of the control plane (required): `redis://` or `rediss://` (TLS), with `USER:PASSWORD@` for an ACL user. */
  redisUrl: string;
  /** CA, client certificate and key files of a rediss:// URL (env REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE, REDIS_TLS_SERVERNAME). */
  redisTls?: RedisTls;
  /** Object store with datasets and checkpoints (required). */
  s3: S3Config;
  /** Redis key prefix of the control plane and BullMQ queue prefix. Default `tf`. */
  prefix?: string;
  /** BullMQ queue name. Default `tensorfleet-jobs`. */
  queueName?: string;
  /**
   * Jobs this coordinator schedules and follows at once (BullMQ worker concurrency): it
   * bounds how many jobs run on the cluster per coordinator replica. Default 64.
   */
  concurrency?: number;
  /** First wait between attempts to claim workers; doubles up to claimMaxBackoffMs. Default 250. */
  claimBackoffMs?: number;
  /** Default 5000. */
  claimMaxBackoffMs?: number;
  /** How often a running job's events and members' heartbeats are checked. Default 500 ms. */
  followPollMs?: number;
  /** A worker busy with a job that ended this long ago is set idle when another job needs it. Default 30000. */
  staleBusyMs?: number;
  /**
   * A worker whose heartbeat has been gone this long is removed from the registry (and the
   * dashboard); a worker that comes back registers again. Default 600000 (10 min).
   */
  forgetLostAfterMs?: number;
  /**
   * Jobs kept in Redis: beyond it the oldest finished ones are deleted (record and streams,
   * not checkpoints), every 30 s. 0 = keep every job. Default 100000 (about 160 MB of records).
   */
  jobHistory?: number;
  /** A waiting gang reserves workers against newer jobs of its priority after this long. Default 120000. */
  reserveAfterMs?: number;
  /**
   * BullMQ lock of an active job, renewed every half of it by the coordinator that follows
   * the job: a killed coordinator's jobs are taken over by another (a replica, or the next
   * one to start) between one and two lock durations after it died (env
   * FLEET_LOCK_DURATION_MS). At least 1000. Default 30000.
   */
  lockDurationMs?: number;
  /**
   * The most workers this cluster can ever have: a job needing more (dataParallel × stages)
   * is a 400 instead of waiting in the queue forever. Default: no limit (workers may join later).
   */
  maxWorkers?: number;
  /** Serve Swagger UI at /docs and the document at /docs-json. Default true. */
  swagger?: boolean;
  /** Where log lines go. Default: Nest's console logger (errors and warnings only if `quiet`). */
  quiet?: boolean;
  /**
   * Bearer tokens of the HTTP API (env FLEET_API_TOKEN, FLEET_API_READ_TOKEN; comma-separated
   * entries, each a bare token or `name:token[:role[:scope|scope…]]`). `read` tokens may only
   * GET. Default none: the API is open, as on a developer's machine.
   */
  apiTokens?: ApiToken[];
}

export interface ApiToken {
  token: string;
  access: 'write' | 'read';
  /**
   * Who the token is: recorded as the owner of the jobs it submits. Tokens of the same name
   * (say a write and a read token of one team) share their jobs.
   */
  name?: string;
  /**
   * Object-store paths the token may name, as `bucket/prefix` (that prefix and below),
   * `bucket/prefix*` (any prefix starting so) or `bucket/*`. A token with scopes submits only
   * jobs whose dataset is inside them and whose checkpoint bucket is one of their buckets, and
   * sees, pauses, resumes and cancels only the jobs of its name. Absent: the whole cluster.
   */
  scopes?: string[];
}

export type CoordinatorConfig = Required<Omit<CoordinatorOptions, 'maxWorkers' | 'redisTls'>> & Pick<CoordinatorOptions, 'maxWorkers' | 'redisTls'>;

export const COORDINATOR_CONFIG = Symbol('COORDINATOR_CONFIG');

const DEFAULTS: Omit<CoordinatorConfig, 'redisUrl' | 'redisTls' | 's3' | 'maxWorkers'> = {
  port: 3000, host: '0.0.0.0', prefix: 'tf', queueName: 'tensorfleet-jobs', concurrency: 64,
  claimBackoffMs: 250, claimMaxBackoffMs: 5000, followPollMs: 500, staleBusyMs: 30_000, forgetLostAfterMs: 600_000, reserveAfterMs: 120_000, jobHistory: 100_000, lockDurationMs: 30_000, swagger: true, quiet: false, apiTokens: [],
};

export class CoordinatorConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoordinatorConfigError';
  }
}

/** Merges the defaults once and rejects what cannot work, saying what to set. */
export function resolveCoordinatorConfig(opts: CoordinatorOptions): CoordinatorConfig {
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const c = { ...DEFAULTS, ...defined } as CoordinatorConfig;
  if (!c.redisUrl || !/^rediss?:\/\//.test(c.redisUrl)) throw new CoordinatorConfigError(`redisUrl must be a redis:// URL (env REDIS_URL), got "${redactRedisUrl(String(c.redisUrl))}"`);
  if (!c.s3 || !c.s3.endPoint || !c.s3.port) throw new CoordinatorConfigError('s3 needs endPoint and port: set S3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY or TF_S3 (JSON S3Config)');
  if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw new CoordinatorConfigError(`port must be 0..65535, got ${c.port}`);
  if (!c.prefix || /[\s:]/.test(c.prefix.replace(/:$/, ''))) throw new CoordinatorConfigError(`prefix must be non-empty without spaces, got "${c.prefix}"`);
  if (!c.queueName || c.queueName.includes(':')) throw new CoordinatorConfigError(`queueName must be non-empty without ":", got "${c.queueName}"`);
  for (const k of ['concurrency', 'claimBackoffMs', 'claimMaxBackoffMs', 'followPollMs', 'staleBusyMs', 'forgetLostAfterMs', 'reserveAfterMs', 'lockDurationMs'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new CoordinatorConfigError(`${k} must be a positive integer, got ${c[k]}`);
  }
  // Renewed every half: below a second a loaded event loop would lose locks it holds.
  if (c.lockDurationMs < 1000) throw new CoordinatorConfigError(`lockDurationMs must be at least 1000 (env FLEET_LOCK_DURATION_MS), got ${c.lockDurationMs}`);
  if (!Number.isInteger(c.jobHistory) || c.jobHistory < 0) throw new CoordinatorConfigError(`jobHistory must be an integer >= 0 (env FLEET_JOB_HISTORY; 0 keeps every job), got ${c.jobHistory}`);
  if (c.maxWorkers !== undefined && !(Number.isInteger(c.maxWorkers) && c.maxWorkers >= 1)) throw new CoordinatorConfigError(`maxWorkers must be a positive integer (env FLEET_MAX_WORKERS), got ${c.maxWorkers}`);
  for (const [i, t] of c.apiTokens.entries()) {
    if (typeof t.token !== 'string' || t.token.length < 16) throw new CoordinatorConfigError(`apiTokens[${i}].token must be a string of at least 16 characters (e.g. \`openssl rand -hex 24\`)`);
    if (t.access !== 'write' && t.access !== 'read') throw new CoordinatorConfigError(`apiTokens[${i}].access must be "write" or "read", got "${String(t.access)}"`);
    if (t.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(t.name)) throw new CoordinatorConfigError(`apiTokens[${i}].name must be 1-63 letters, digits, ".", "_" or "-", got "${t.name}"`);
    if (t.scopes !== undefined) {
      if (!t.name) throw new CoordinatorConfigError(`apiTokens[${i}].name is needed with scopes: the token's jobs are recorded under it`);
      if (!Array.isArray(t.scopes) || t.scopes.length === 0) throw new CoordinatorConfigError(`apiTokens[${i}].scopes must list at least one bucket/prefix pattern, or be left out`);
      for (const [j, sc] of t.scopes.entries()) {
        try { parseScope(sc); } catch (e) { throw new CoordinatorConfigError(`apiTokens[${i}].scopes[${j}]: ${(e as Error).message}`); }
      }
    }
  }
  const digests = new Set(c.apiTokens.map((t) => t.token));
  if (digests.size !== c.apiTokens.length) throw new CoordinatorConfigError('apiTokens: the same token is configured twice (with possibly different roles or scopes)');
  c.prefix = c.prefix.replace(/:$/, '');
  return c;
}

/**
 * The process environment as coordinator options: PORT, HOST, REDIS_URL, REDIS_TLS_* (see
 * RedisTls), TF_S3 (JSON S3Config) or S3_ENDPOINT + S3_ACCESS_KEY + S3_SECRET_KEY [+ S3_REGION,
 * S3_CA_FILE], FLEET_PREFIX,
 * FLEET_QUEUE, FLEET_CONCURRENCY, FLEET_FORGET_LOST_AFTER_MS, FLEET_RESERVE_AFTER_MS, FLEET_MAX_WORKERS, FLEET_JOB_HISTORY,
 * FLEET_LOCK_DURATION_MS, FLEET_FOLLOW_POLL_MS, FLEET_CLAIM_BACKOFF_MS, FLEET_CLAIM_MAX_BACKOFF_MS, FLEET_API_TOKEN and FLEET_API_READ_TOKEN (comma-separated bearer tokens).
 */
export function coordinatorOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): CoordinatorOptions {
  const num = (v: string | undefined) => (v === undefined || v === '' ? undefined : Number(v));
  const redisUrl = redisUrlFromEnv(env);
  if (!redisUrl) throw new CoordinatorConfigError('REDIS_URL is not set: e.g. REDIS_URL=redis://127.0.0.1:6379');
  let s3: S3Config | null = null;
  if (env.TF_S3) {
    try { s3 = JSON.parse(env.TF_S3) as S3Config; } catch { throw new CoordinatorConfigError('TF_S3 is not JSON: give an S3Config { endPoint, port, useSSL, accessKey, secretKey, region }'); }
  } else s3 = s3ConfigFromEnv(env);
  if (!s3) throw new CoordinatorConfigError('no object store: set S3_ENDPOINT (e.g. http://127.0.0.1:9000), S3_ACCESS_KEY and S3_SECRET_KEY, or TF_S3');
  return {
    port: num(env.PORT), host: env.HOST || undefined, redisUrl, redisTls: redisTlsFromEnv(env), s3, prefix: env.FLEET_PREFIX || undefined,
    queueName: env.FLEET_QUEUE || undefined, concurrency: num(env.FLEET_CONCURRENCY),
    forgetLostAfterMs: num(env.FLEET_FORGET_LOST_AFTER_MS), reserveAfterMs: num(env.FLEET_RESERVE_AFTER_MS), maxWorkers: num(env.FLEET_MAX_WORKERS),
    jobHistory: num(env.FLEET_JOB_HISTORY),
    lockDurationMs: num(env.FLEET_LOCK_DURATION_MS), followPollMs: num(env.FLEET_FOLLOW_POLL_MS),
    claimBackoffMs: num(env.FLEET_CLAIM_BACKOFF_MS), claimMaxBackoffMs: num(env.FLEET_CLAIM_MAX_BACKOFF_MS),
    apiTokens: [...tokensFromEnv(env.FLEET_API_TOKEN, 'write'), ...tokensFromEnv(env.FLEET_API_READ_TOKEN, 'read')],
  };
}

/**
 * Comma-separated entries: a bare token (of the variable's role, the whole cluster), or
 * `name:token[:role[:scope|scope…]]`, e.g. `team-a:3f9…:write:datasets/team-a/*|scratch/*`.
 * A read-only variable cannot hold write tokens.
 */
export function tokensFromEnv(value: string | undefined, access: ApiToken['access']): ApiToken[] {
  const variable = access === 'write' ? 'FLEET_API_TOKEN' : 'FLEET_API_READ_TOKEN';
  return (value ?? '').split(',').map((t) => t.trim()).filter(Boolean).map((entry, i) => {
    if (!entry.includes(':')) return { token: entry, access };
    const [name, token, role, scopes, ...rest] = entry.split(':');
    if (rest.length || !token) throw new CoordinatorConfigError(`${variable} entry ${i + 1} must be a token or name:token[:role[:scope|scope...]]`);
    if (role && role !== 'write' && role !== 'read') throw new CoordinatorConfigError(`${variable} entry ${i + 1} (${name}): role must be "write" or "read", got "${role}"`);
    if (access === 'read' && role === 'write') throw new CoordinatorConfigError(`${variable} entry ${i + 1} (${name}): a write token belongs in FLEET_API_TOKEN`);
    return {
      token, name, access: (role || access) as ApiToken['access'],
      ...(scopes ? { scopes: scopes.split('|').map((x) => x.trim()).filter(Boolean) } : {}),
    };
  });
}
