import type { JobRecord, LogLine, MetricEntry, WorkerInfo } from './types';

// What the coordinator's REST API answers with, as its clients (the CLI, the dashboard) read
// it: one set of types for the server and every client. The coordinator's Swagger classes
// implement these interfaces, so the document and the types cannot drift apart.

/** A job as GET /jobs and GET /jobs/:id show it: the record without the scheduler's cursor, with its name and progress. */
export type JobView = Omit<JobRecord, 'eventsFrom'> & {
  /** spec.name, at the top for lists. */
  name?: string;
  /** step / totalSteps, 0..1. */
  progress?: number;
};
/** The `job` message of a job's event stream: the view without its spec. */
export type JobBrief = Omit<JobView, 'spec'>;
export type WorkerView = WorkerInfo;
/** A metric entry with its stream id (the `from` cursor of the next read). */
export type MetricView = MetricEntry & { id: string };
export type LogLineView = LogLine & { id: string };
/** GET /jobs/:id/logs. */
export interface LogPageView {
  /** Oldest first. */
  lines: LogLineView[];
  /** Cursor of the next page (`after`): the same as sent when there is nothing new. */
  next: string;
}

export function toJobView(r: JobRecord): JobView {
  const { eventsFrom: _e, ...rest } = r;
  const progress = r.step !== undefined && r.totalSteps ? Math.min(1, r.step / r.totalSteps) : undefined;
  return { ...rest, ...(r.spec.name ? { name: r.spec.name } : {}), ...(progress !== undefined ? { progress } : {}) };
}
