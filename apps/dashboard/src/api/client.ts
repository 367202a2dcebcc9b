import type { CheckpointView, JobBrief, JobEvent, JobState, JobView, MetricView, WorkerView } from '@tensorfleet/control';
import type { TokenStore } from './token-store';

// The coordinator's answers, in its own types (@tensorfleet/control's api-views), as the CLI's client reads them too.
export type EventView = JobEvent;
export type JobAction = 'pause' | 'resume' | 'cancel';

export type { CheckpointView, JobBrief, JobView, MetricView, WorkerView };

/** One worker log line of GET /jobs/:id/logs. */
export interface LogLine {
  id?: string;
  ts?: number;
  rank?: number;
  level?: string;
  workerId?: string;
  message: string;
}

export const LOG_PAGE = 1000;
export const ACTIVE_STATES: readonly JobState[] = ['queued', 'scheduled', 'running', 'paused'];
export const TERMINAL_STATES: readonly JobState[] = ['completed', 'failed', 'cancelled'];

/** Which buttons a job in `state` offers (the coordinator answers 409 to the others). */
export function allowedActions(job: Pick<JobView, 'state' | 'pauseRequested'>): Set<JobAction> {
  const s = new Set<JobAction>();
  if ((job.state === 'running' || job.state === 'queued' || job.state === 'scheduled') && !job.pauseRequested) s.add('pause');
  if (job.state === 'paused' || job.state === 'failed') s.add('resume');
  if (ACTIVE_STATES.includes(job.state)) s.add('cancel');
  return s;
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The REST API of the coordinator that served the page (relative URLs, so a path prefix works). */
export class DashboardApi {
  constructor(private readonly tokens: TokenStore, private readonly base = '') {}

  workers(): Promise<WorkerView[]> { return this.request('GET', 'workers'); }
  jobs(): Promise<JobView[]> { return this.request('GET', 'jobs'); }
  job(id: string): Promise<JobView> { return this.request('GET', `jobs/${enc(id)}`); }
  checkpoints(id: string): Promise<CheckpointView[]> { return this.request('GET', `jobs/${enc(id)}/checkpoints`); }
  action(id: string, action: JobAction): Promise<JobView> { return this.request('POST', `jobs/${enc(id)}/${action}`); }

  /** Metric entries after cursor `from` ('0': from the start); `next` continues. */
  metrics(id: string, from = '0', count = 10_000): Promise<{ entries: MetricView[]; next: string }> {
    return this.request('GET', `jobs/${enc(id)}/metrics?from=${enc(from)}&count=${count}`);
  }

  /**
   * The job's worker log lines after cursor `after`, oldest first (GET /jobs/:id/logs, a page of
   * at most `limit`), or null where the coordinator has no logs endpoint (404).
   */
  async logs(id: string, after = '0', limit = LOG_PAGE): Promise<{ lines: LogLine[]; next: string } | null> {
    try {
      const body = await this.request<unknown>('GET', `jobs/${enc(id)}/logs?after=${enc(after)}&limit=${limit}`);
      const next = (body as { next?: unknown } | undefined)?.next;
      return { lines: toLogLines(body), next: typeof next === 'string' ? next : after };
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  }

  /** URL of the job's Server-Sent Events; the token goes in the query (EventSource sends no headers). */
  eventsUrl(id: string, metricsFrom: string): string {
    const t = this.tokens.get();
    return `${this.base}jobs/${enc(id)}/events?from=0&metricsFrom=${enc(metricsFrom)}${t ? `&access_token=${enc(t)}` : ''}`;
  }

  private async request<T>(method: string, path: string, retried = false): Promise<T> {
    const used = this.tokens.get();
    const res = await fetch(this.base + path, { method, headers: used ? { authorization: `Bearer ${used}` } : {} });
    if (res.status === 401 && !retried && this.tokens.renew(used)) return this.request(method, path, true);
    const text = await res.text();
    let body: unknown = text;
    try { body = text ? JSON.parse(text) : undefined; } catch { /* not JSON: keep the text */ }
    if (!res.ok) throw new ApiError(res.status, `${method} ${path}: ${res.status} ${errorMessage(body)}`);
    return body as T;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function errorMessage(body: unknown): string {
  const msg = (body as { message?: unknown } | undefined)?.message;
  if (Array.isArray(msg)) return msg.join('; ');
  if (typeof msg === 'string') return msg;
  return typeof body === 'string' ? body.slice(0, 200) : '';
}

/** Log lines of `{ lines: [{ id, ts, rank, level, workerId, msg }] }`, also taking `entries`, a bare array or plain text. */
export function toLogLines(body: unknown): LogLine[] {
  const list = Array.isArray(body) ? body
    : body && typeof body === 'object' ? ((body as { entries?: unknown }).entries ?? (body as { lines?: unknown }).lines)
      : typeof body === 'string' ? body.split('\n').filter((l) => l.length > 0) : [];
  if (!Array.isArray(list)) return [];
  return list.map((l): LogLine => {
    if (typeof l === 'string') return { message: l };
    const o = (l ?? {}) as Record<string, unknown>;
    const num = (v: unknown) => (v === undefined || v === null || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v));
    return {
      id: typeof o.id === 'string' ? o.id : undefined,
      ts: num(o.ts ?? o.time),
      rank: num(o.rank),
      level: typeof o.level === 'string' ? o.level : undefined,
      workerId: typeof o.workerId === 'string' ? o.workerId : undefined,
      message: String(o.message ?? o.msg ?? o.line ?? JSON.stringify(o)),
    };
  });
}
