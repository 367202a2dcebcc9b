import type { JobView, LogPageView, MetricView, ParallelismSpecInput, WorkerView } from '@tensorfleet/control';
import { currentClusterSettings, storedTokenFor } from '../background/cluster-dir';

/**
 * A small typed client of the coordinator's REST API (see /docs on a running coordinator),
 * in the server's own types (@tensorfleet/control's api-views).
 */
export class CoordinatorClient {
  /**
   * `token`: the coordinator's bearer token; default FLEET_API_TOKEN from the environment, else
   * the one `fleet up` stored when `baseUrl` is its coordinator.
   */
  constructor(readonly baseUrl: string, private readonly token: string | undefined = process.env.FLEET_API_TOKEN ?? storedTokenFor(baseUrl)) {}

  /** A spec as read from a file is checked by the coordinator (400 naming the field), not here. */
  async submitJob(spec: unknown): Promise<JobView> {
    return this.request('POST', '/jobs', spec);
  }
  async getJob(id: string): Promise<JobView> {
    return this.request('GET', `/jobs/${encodeURIComponent(id)}`);
  }
  async listJobs(): Promise<JobView[]> {
    return this.request('GET', '/jobs');
  }
  async listWorkers(): Promise<WorkerView[]> {
    return this.request('GET', '/workers');
  }
  /** Removes a lost worker from the registry (409 if it is alive). */
  async forgetWorker(id: string): Promise<void> {
    await this.request('DELETE', `/workers/${encodeURIComponent(id)}`);
  }
  /** `resume` may take `{ parallelism }` (resume on another plan), `pause` `{ atStep }` (pause after that step). */
  async jobAction(id: string, action: 'cancel' | 'pause' | 'resume', body?: { parallelism?: ParallelismSpecInput } | { atStep?: number }): Promise<JobView> {
    return this.request('POST', `/jobs/${encodeURIComponent(id)}/${action}`, body);
  }
  async metrics(id: string, from = '-'): Promise<{ entries: MetricView[]; next: string }> {
    return this.request('GET', `/jobs/${encodeURIComponent(id)}/metrics?from=${encodeURIComponent(from)}`);
  }
  /** The job's log lines after `after` (GET /jobs/:id/logs); `next` continues. */
  async logs(id: string, opts: { after?: string; limit?: number; rank?: number } = {}): Promise<LogPageView> {
    const q = new URLSearchParams({ after: opts.after ?? '0' });
    if (opts.limit !== undefined) q.set('limit', String(opts.limit));
    if (opts.rank !== undefined) q.set('rank', String(opts.rank));
    return this.request('GET', `/jobs/${encodeURIComponent(id)}/logs?${q}`);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(this.baseUrl + path, {
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const local = currentClusterSettings();
      const hint = local && local.coordinatorUrl === this.baseUrl
        ? `the local cluster in ${local.dir} is not running: \`fleet up --dir ${local.dir}\` starts it again`
        : 'start one with `fleet up` (or `fleet coordinator`), or pass --coordinator URL';
      throw new Error(`cannot reach the coordinator at ${this.baseUrl} (${(e as Error).message}); ${hint}`);
    }
    const text = await res.text();
    const data = text ? JSON.parse(text) : undefined;
    if (!res.ok) throw new ApiError(res.status, data);
    return data as T;
  }
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly body: any) {
    super(`coordinator answered ${status}: ${formatApiError(body)}`);
  }
}

function formatApiError(body: any): string {
  if (!body) return 'no body';
  const msg = body.message;
  if (Array.isArray(msg)) return msg.join('; ');
  return typeof msg === 'string' ? msg : JSON.stringify(body);
}

export type { JobView, LogLineView, MetricView, WorkerView } from '@tensorfleet/control';
