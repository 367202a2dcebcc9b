import { DataError } from '../errors';

type Env = Record<string, string | undefined>;

export interface RetrySettings {
  /** Total time an operation may spend retrying before it fails with S3_UNREACHABLE. */
  budgetMs: number;
  /** Delay before the first retry; doubles on each further one. */
  baseMs: number;
  /** Upper bound of one delay. */
  maxMs: number;
}

export interface RetryPolicyOptions extends Partial<RetrySettings> {
  /** One line per retry. Default: console.warn with a timestamp. */
  log?: (line: string) => void;
  /** Where the endpoint is, for the messages. */
  endpoint?: string;
  /** Uniform [0, 1) for the jitter. Default: Math.random. */
  random?: () => number;
}

/** Enough for a proxy restart or a short network partition; a longer outage fails the job, which resumes from its last committed checkpoint. */
export const DEFAULT_RETRY: RetrySettings = { budgetMs: 60_000, baseMs: 200, maxMs: 5_000 };

export const RETRY_ENV = { budgetMs: 'FLEET_S3_RETRY_BUDGET_MS', baseMs: 'FLEET_S3_RETRY_BASE_MS', maxMs: 'FLEET_S3_RETRY_MAX_MS' } as const;

/** FLEET_S3_RETRY_{BUDGET,BASE,MAX}_MS over the defaults; a bad value is an error naming the variable. */
export function retrySettingsFromEnv(env: Env = process.env): RetrySettings {
  const out = { ...DEFAULT_RETRY };
  for (const field of Object.keys(RETRY_ENV) as (keyof RetrySettings)[]) {
    const name = RETRY_ENV[field];
    const raw = env[name]?.trim();
    if (!raw) continue;
    const v = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(v)) throw new DataError('BAD_OPTIONS', `${name}='${raw}' must be a whole number of milliseconds (e.g. ${DEFAULT_RETRY[field]})`);
    out[field] = v;
  }
  return checkSettings(out, (f) => RETRY_ENV[f]);
}

function checkSettings(s: RetrySettings, nameOf: (f: keyof RetrySettings) => string): RetrySettings {
  for (const f of ['budgetMs', 'baseMs', 'maxMs'] as const) {
    if (!(Number.isFinite(s[f]) && s[f] >= 0)) throw new DataError('BAD_OPTIONS', `${nameOf(f)} must be a number of milliseconds >= 0 (got ${JSON.stringify(s[f])})`);
  }
  if (s.baseMs < 1) throw new DataError('BAD_OPTIONS', `${nameOf('baseMs')} must be at least 1 ms (got ${s.baseMs})`);
  if (s.maxMs < s.baseMs) throw new DataError('BAD_OPTIONS', `${nameOf('maxMs')} (${s.maxMs}) must not be below ${nameOf('baseMs')} (${s.baseMs})`);
  return s;
}

/** Network-level failures and server-side trouble: worth another try. */
const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'UND_ERR_SOCKET']);
const TRANSIENT_S3_CODES = new Set(['SlowDown', 'InternalError', 'ServiceUnavailable', 'RequestTimeout', 'RequestTimeTooSkewed', 'Throttling', 'ThrottlingException', 'OperationAborted']);

/**
 * Whether another try may succeed: connection refused/reset, timeouts, 5xx, SlowDown.
 * Never 4xx answers (NoSuchKey, AccessDenied, ...): the same request gets the same answer.
 */
export function isTransient(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; statusCode?: unknown; cause?: unknown; errors?: unknown };
  if (!e || typeof e !== 'object') return false;
  if (e instanceof DataError) return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (TRANSIENT_CODES.has(code) || TRANSIENT_S3_CODES.has(code)) return true;
  const status = Number(e.statusCode);
  if (status >= 500 && status < 600) return true;
  if (status >= 400 && status < 500) return false;
  const msg = typeof e.message === 'string' ? e.message : '';
  if (/socket hang up|Retryable HTTP status|ECONNRESET|ECONNREFUSED|other side closed|premature close|aborted/i.test(msg)) return true;
  // minio reports a body-less 5xx answer (HEAD, an error page from a proxy) as UnknownError with the status as message.
  if (code === 'UnknownError' && /^5\d\d\b/.test(msg)) return true;
  // Node wraps a refused connection to a dual-stack host in an AggregateError of per-address errors.
  if (Array.isArray(e.errors)) return e.errors.some(isTransient);
  return false;
}

/**
 * The one retry policy of every object-store call: exponential backoff with jitter within a
 * total time budget, transient errors only (isTransient). Each retry logs what failed, the
 * attempt and when it goes again; a spent budget is a DataError S3_UNREACHABLE.
 */
export class RetryPolicy {
  readonly settings: RetrySettings;
  private readonly log: (line: string) => void;
  private readonly random: () => number;
  private readonly endpoint: string;

  constructor(opts: RetryPolicyOptions = {}) {
    this.settings = checkSettings(
      { budgetMs: opts.budgetMs ?? DEFAULT_RETRY.budgetMs, baseMs: opts.baseMs ?? DEFAULT_RETRY.baseMs, maxMs: opts.maxMs ?? DEFAULT_RETRY.maxMs },
      (f) => `retry ${f}`,
    );
    this.log = opts.log ?? ((line) => console.warn(`${new Date().toISOString()} [s3] ${line}`));
    this.random = opts.random ?? Math.random;
    this.endpoint = opts.endpoint ?? 'the S3 endpoint';
  }

  /** The same policy, naming `endpoint` in its messages. */
  forEndpoint(endpoint: string): RetryPolicy {
    return new RetryPolicy({ ...this.settings, log: this.log, random: this.random, endpoint });
  }

  /** Settings from the environment (FLEET_S3_RETRY_*), the rest from opts. */
  static fromEnv(opts: Omit<RetryPolicyOptions, keyof RetrySettings> = {}, env: Env = process.env): RetryPolicy {
    return new RetryPolicy({ ...opts, ...retrySettingsFromEnv(env) });
  }

  /** Delay before retry number `retry` (1-based): base·2^(retry-1) capped at max, then jittered to [½, 1] of that. */
  delayMs(retry: number): number {
    const full = Math.min(this.settings.maxMs, this.settings.baseMs * 2 ** Math.min(30, retry - 1));
    return Math.round(full * (0.5 + 0.5 * this.random()));
  }

  /**
   * Runs `fn` until it succeeds, fails with a non-transient error (thrown as is), or the
   * budget is spent (S3_UNREACHABLE). `what` names the operation in the log, e.g. "get b/k".
   */
  async run<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    const t0 = Date.now();
    const deadline = t0 + this.settings.budgetMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (err) {
        if (!isTransient(err)) throw s3TlsError(err, this.endpoint, what) ?? err;
        const delay = this.delayMs(attempt);
        const now = Date.now();
        if (now + delay > deadline) {
          throw new DataError(
            'S3_UNREACHABLE',
            `${what}: ${this.endpoint} still failing after ${attempt} attempt${attempt === 1 ? '' : 's'} in ${((now - t0) / 1000).toFixed(1)} s (last error: ${describe(err)}). ` +
              `Check that the S3 server is up and reachable at S3_ENDPOINT, and its credentials; to wait longer through outages raise ${RETRY_ENV.budgetMs} (now ${this.settings.budgetMs}).`,
          );
        }
        this.log(`${what} failed (${describe(err)}), attempt ${attempt}; retrying in ${delay} ms (${((deadline - now) / 1000).toFixed(1)} s of the retry budget left)`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }
}

const UNTRUSTED = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE']);

/**
 * A TLS failure no retry can fix (a certificate not trusted, not for this host, expired, or an
 * https endpoint that speaks http) as a DataError S3_TLS saying what to set; null otherwise.
 */
export function s3TlsError(err: unknown, endpoint: string, what: string): DataError | null {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? e.code : '';
  const msg = typeof e?.message === 'string' ? e.message : '';
  let why: string | null = null;
  if (UNTRUSTED.has(code)) why = `its TLS certificate is not trusted (${code}: ${msg}): set S3_CA_FILE to the PEM file of the CA that signed it (or add that CA with NODE_EXTRA_CA_CERTS)`;
  else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') why = `its TLS certificate is not for this host (${msg}): use a host name in S3_ENDPOINT that the certificate holds`;
  else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') why = `its TLS certificate is not valid now (${code}): renew it on the server`;
  else if (/wrong version number|WRONG_VERSION_NUMBER|packet length too long/i.test(`${code} ${msg}`)) why = `it does not answer TLS (${msg}): use http:// in S3_ENDPOINT for a plain endpoint`;
  return why ? new DataError('S3_TLS', `${what}: ${endpoint}: ${why}`) : null;
}

function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const msg = typeof e?.message === 'string' && e.message ? e.message : String(err);
  return typeof e?.code === 'string' && !msg.includes(e.code) ? `${e.code}: ${msg}` : msg;
}
