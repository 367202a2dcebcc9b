import { Inject, Injectable, type MessageEvent } from '@nestjs/common';
import { Observable } from 'rxjs';
import { ControlPlane, TERMINAL_JOB_STATES, type LogLine } from '@tensorfleet/control';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';

/**
 * A job's live feed for Server-Sent Events: `event` (the events stream), `metric` (the
 * metrics stream), `job` (the record, when it changes) and `end` (the job has ended or
 * does not exist; the stream closes). Polls Redis without blocking, so a thousand
 * watchers cost no connections.
 */
@Injectable()
export class JobStreamService {
  constructor(private readonly control: ControlPlane, @Inject(COORDINATOR_CONFIG) private readonly cfg: CoordinatorConfig) {}

  /** Metric entries after `from` ('0' = all); the `next` cursor continues. */
  async metrics(id: string, from = '0', count = 1000): Promise<{ entries: Record<string, unknown>[]; next: string }> {
    const entries = await this.control.readMetrics(id, from, count);
    return { entries, next: entries.length ? entries[entries.length - 1].id : from === '-' ? '0' : from };
  }

  /** Log lines after `after`; `next` continues (see ControlPlane.readLogs). */
  logs(id: string, q: { after: string; limit: number; rank?: number }): Promise<{ lines: LogLine[]; next: string }> {
    return this.control.readLogs(id, q);
  }

  feed(id: string, eventsFrom = '0', metricsFrom = '$'): Observable<MessageEvent> {
    return new Observable<MessageEvent>((sub) => {
      let stopped = false;
      const loop = async () => {
        let ev = eventsFrom;
        let met = metricsFrom === '$' ? await this.lastMetricId(id) : metricsFrom;
        let lastJob = '';
        let endedAt = 0;
        while (!stopped) {
          const job = await this.control.getJob(id);
          if (!job) {
            sub.next({ type: 'end', data: { state: null, message: `no job ${id}` } });
            break;
          }
          const events = await this.control.readEvents(id, ev);
          for (const e of events) sub.next({ type: 'event', id: e.id, data: e });
          if (events.length) ev = events[events.length - 1].id!;
          const metrics = await this.control.readMetrics(id, met);
          for (const m of metrics) sub.next({ type: 'metric', id: m.id, data: m });
          if (metrics.length) met = metrics[metrics.length - 1].id;
          const { spec: _s, eventsFrom: _e, ...brief } = job;
          const snapshot = JSON.stringify(brief);
          if (snapshot !== lastJob) sub.next({ type: 'job', data: brief });
          lastJob = snapshot;
          // One more round after the end, for the last metrics written after the state.
          if (TERMINAL_JOB_STATES.includes(job.state)) {
            if (endedAt) {
              // Tells EventSource clients to close instead of reconnecting.
              sub.next({ type: 'end', data: { state: job.state } });
              break;
            }
            endedAt = Date.now();
          }
          await new Promise((r) => setTimeout(r, this.cfg.followPollMs));
        }
        sub.complete();
      };
      loop().catch((e: Error) => { if (!stopped) sub.error(e); });
      return () => { stopped = true; };
    });
  }

  private async lastMetricId(id: string): Promise<string> {
    const r = await this.control.redis.xrevrange(this.control.keys.metrics(id), '+', '-', 'COUNT', 1);
    return r.length ? r[0][0] : '0';
  }
}
