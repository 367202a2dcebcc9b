import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import { ControlPlaneError } from './errors';

/**
 * The files of a `rediss://` connection, as paths: every process (and the worker's heartbeat
 * thread) reads them itself, so they can be handed on in an environment or a thread's data.
 * They become ioredis's `tls: { ca, cert, key, servername }` (Node's tls.connect options).
 */
export interface RedisTls {
  /** PEM CA bundle the server's certificate must chain to; replaces the system CAs for Redis. */
  caFile?: string;
  /** Client certificate (PEM), for a server with `tls-auth-clients yes`; needs keyFile. */
  certFile?: string;
  keyFile?: string;
  /** The name the server's certificate must hold, when it is not the URL's host. */
  servername?: string;
}

/** The variables every process reads them from, next to REDIS_URL. */
export const REDIS_TLS_ENV = {
  caFile: 'REDIS_TLS_CA_FILE',
  certFile: 'REDIS_TLS_CERT_FILE',
  keyFile: 'REDIS_TLS_KEY_FILE',
  servername: 'REDIS_TLS_SERVERNAME',
} as const satisfies Record<keyof RedisTls, string>;

/** REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE, REDIS_TLS_KEY_FILE, REDIS_TLS_SERVERNAME; undefined when none is set. */
export function redisTlsFromEnv(env: Record<string, string | undefined> = process.env): RedisTls | undefined {
  const tls: RedisTls = {};
  for (const [field, name] of Object.entries(REDIS_TLS_ENV) as [keyof RedisTls, string][]) {
    const v = env[name]?.trim();
    if (v) tls[field] = v;
  }
  return Object.keys(tls).length ? tls : undefined;
}

/** The environment that gives another process the same TLS settings. */
export function redisTlsEnv(tls: RedisTls | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [field, name] of Object.entries(REDIS_TLS_ENV) as [keyof RedisTls, string][]) {
    if (tls?.[field]) out[name] = tls[field]!;
  }
  return out;
}

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactRedisUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@/i, (_m, scheme: string, auth: string) => {
    const user = auth.includes(':') ? auth.slice(0, auth.indexOf(':')) : '';
    return `${scheme}${user}:***@`;
  });
}

/**
 * ioredis options for `url` (which carries the ACL user and password:
 * `rediss://USER:PASSWORD@host:port`) with the TLS files read. A TLS setting on a plain
 * `redis://` URL, a certificate without its key or an unreadable file is an error naming
 * the variable, instead of a connection that silently goes unencrypted or never succeeds.
 */
export function redisOptions(url: string, tls: RedisTls | undefined, extra: RedisOptions = {}): RedisOptions {
  if (!/^rediss?:\/\/[^/]+/i.test(url)) throw new ControlPlaneError(`REDIS_URL='${redactRedisUrl(url)}' is not a redis URL: use redis://[USER:PASSWORD@]HOST:PORT, or rediss:// for TLS`, 'BAD_OPTIONS');
  const secure = /^rediss:/i.test(url);
  const set = Object.entries(REDIS_TLS_ENV).filter(([f]) => tls?.[f as keyof RedisTls]).map(([, name]) => name);
  if (!secure) {
    if (set.length) throw new ControlPlaneError(`${set.join(', ')} ${set.length > 1 ? 'are' : 'is'} set but REDIS_URL is redis://${redactRedisUrl(url).slice(8)}: use rediss:// to connect over TLS, or unset ${set.length > 1 ? 'them' : 'it'}`, 'BAD_OPTIONS');
    return extra;
  }
  if (!!tls?.certFile !== !!tls?.keyFile) throw new ControlPlaneError(`${tls?.certFile ? REDIS_TLS_ENV.certFile : REDIS_TLS_ENV.keyFile} is set without ${tls?.certFile ? REDIS_TLS_ENV.keyFile : REDIS_TLS_ENV.certFile}: a client certificate needs both`, 'BAD_OPTIONS');
  const read = (field: 'caFile' | 'certFile' | 'keyFile'): Buffer | undefined => {
    const path = tls?.[field];
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new ControlPlaneError(`${REDIS_TLS_ENV[field]}='${path}' cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the path of a PEM file`, 'BAD_OPTIONS');
    }
  };
  const options: RedisOptions['tls'] = {};
  const ca = read('caFile'), cert = read('certFile'), key = read('keyFile');
  if (ca) options.ca = ca;
  if (cert) options.cert = cert;
  if (key) options.key = key;
  if (tls?.servername) options.servername = tls.servername;
  return { ...extra, tls: options };
}

/**
 * What an error of a Redis connection means when another try cannot help (wrong or missing
 * credentials, an ACL that forbids, a certificate not trusted or not for this host, TLS
 * against a plain port), as a sentence saying what to set; null for the transient kind
 * (refused, reset, timeouts), which ioredis retries.
 */
export function explainRedisError(err: unknown, url: string): string | null {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = typeof e?.message === 'string' ? e.message : String(err);
  const where = `Redis at ${redactRedisUrl(url)}`;
  const user = /^rediss?:\/\/([^:@/]+)(:[^@/]*)?@/i.exec(url)?.[1];
  if (/NOAUTH/.test(msg)) return `${where} wants a user and password (${msg.replace(/^Ready check failed: /, '')}): put them in REDIS_URL as redis://USER:PASSWORD@HOST:PORT (rediss:// for TLS)`;
  if (/WRONGPASS|invalid password|invalid username-password/i.test(msg)) return `${where} refused the ${user ? `user '${user}'` : 'default user'} (${msg}): check the user and password in REDIS_URL (percent-encode special characters) and that the user is 'on' in the server's ACL`;
  if (/NOPERM/.test(msg)) return `${where}: the ACL user ${user ? `'${user}' ` : ''}may not do this (${msg}): its ACL needs +@all (or the commands named) on the keys ~FLEET_PREFIX* and channels &*`;
  const untrusted = ['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE'];
  if (untrusted.includes(code)) return `${where}: its TLS certificate is not trusted (${code}: ${msg}): set ${REDIS_TLS_ENV.caFile} to the PEM file of the CA that signed it (or add that CA with NODE_EXTRA_CA_CERTS)`;
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `${where}: its TLS certificate is not for this host (${msg}): connect by a name the certificate holds, or set ${REDIS_TLS_ENV.servername} to it`;
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') return `${where}: its TLS certificate is not valid now (${code}): renew it on the server`;
  if (/wrong version number|packet length too long|WRONG_VERSION_NUMBER/i.test(`${code} ${msg}`)) return `${where} does not answer TLS (${msg}): use redis:// for a plain port, or the server's tls-port`;
  if (/certificate required|CERTIFICATE_REQUIRED|alert handshake failure|alert bad certificate|unknown ca/i.test(`${code} ${msg}`)) return `${where} refused this client's TLS certificate (${code || msg}): it wants one signed by its tls-ca-cert-file; set ${REDIS_TLS_ENV.certFile} and ${REDIS_TLS_ENV.keyFile}`;
  return null;
}

/**
 * A Redis connection to `url` (user and password in it) with the TLS files read, and its
 * drops and returns logged (logRedisConnection). Every Redis client of the coordinator,
 * the workers and their heartbeat threads, BullMQ's and the CLI's, is made here.
 */
export function openRedis(url: string, tls: RedisTls | undefined, name: string, log: (line: string) => void, options: RedisOptions = {}): Redis {
  return logRedisConnection(new Redis(url, redisOptions(url, tls, options)), name, log, url);
}

/**
 * Resolves once `redis` is ready; rejects with what to set (explainRedisError) on the first
 * error another try cannot fix. Transient errors (Redis not up yet) keep it waiting, as
 * ioredis keeps reconnecting: start-up waits for Redis, but a wrong password or CA fails it.
 */
export function waitForRedis(redis: Redis, url: string): Promise<void> {
  if (redis.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = () => {
      redis.off('ready', onReady);
      redis.off('error', onError);
      redis.off('end', onEnd);
    };
    const onEnd = () => {
      done();
      reject(new ControlPlaneError(`Redis at ${redactRedisUrl(url)}: the connection was closed before it was ready`, 'REDIS_ACCESS'));
    };
    const onReady = () => {
      done();
      resolve();
    };
    const onError = (e: Error) => {
      const why = explainRedisError(e, url);
      if (!why) return;
      done();
      reject(new ControlPlaneError(why, 'REDIS_ACCESS'));
    };
    redis.on('ready', onReady);
    redis.on('error', onError);
    redis.on('end', onEnd);
  });
}

/**
 * One line when a Redis connection drops and one when it is back (with how long it was
 * gone), instead of ioredis's "Unhandled error event" for every reconnect attempt. ioredis
 * reconnects by itself; with maxRetriesPerRequest: null the commands wait meanwhile, and
 * the Lua scripts go as EVAL, so a restarted server (empty script cache) runs them as before.
 * With `url`, an error no reconnect can fix (a wrong password, an untrusted certificate) is
 * logged once as what to set (explainRedisError).
 */
export function logRedisConnection<R extends Redis>(redis: R, name: string, log: (line: string) => void, url?: string): R {
  let downSince: number | null = null;
  let lastError = '';
  let explained = '';
  redis.on('error', (e: Error) => {
    lastError = e.message;
    const why = url ? explainRedisError(e, url) : null;
    if (why && why !== explained) log(`Redis connection ${name}: ${why}`);
    explained = why ?? explained;
  });
  redis.on('reconnecting', () => {
    if (downSince !== null) return;
    downSince = Date.now();
    // A plain client on a TLS-only port is reset at its first command: say what that may mean.
    const hint = url && /^redis:/i.test(url) && /ECONNRESET/.test(lastError) ? ' (if the server speaks only TLS, use rediss://)' : '';
    log(`Redis connection ${name} lost (${lastError || 'closed by the server'})${hint}; reconnecting, its commands wait meanwhile`);
  });
  redis.on('ready', () => {
    explained = '';
    if (downSince === null) return;
    log(`Redis connection ${name} back after ${((Date.now() - downSince) / 1000).toFixed(1)} s`);
    downSince = null;
    lastError = '';
  });
  return redis;
}
