import type { ControlPlane, LogLevel } from '@tensorfleet/control';

/** How many appends may wait for Redis before new lines go to stdout only (counted). */
const MAX_PENDING = 1000;

/**
 * A run's logger: every line goes to stdout (through `print`) and to the job's log stream
 * in Redis with rank, level and time, so `fleet logs` and GET /jobs/:id/logs find it. The
 * Redis write is not awaited (training never waits for a log line); lines beyond
 * MAX_PENDING unsent ones, while Redis is slow or away, are dropped from the stream and
 * counted, and the count is logged once Redis takes lines again.
 */
export class JobLog {
  private pending = 0;
  private dropped = 0;
  private failed = 0;

  constructor(
    private readonly control: ControlPlane,
    private readonly where: { jobId: string; rank: number; workerId: string },
    private readonly print: (msg: string) => void,
  ) {}

  readonly info = (msg: string): void => this.line('info', msg);
  readonly error = (msg: string): void => this.line('error', msg);

  line(level: LogLevel, msg: string): void {
    this.print(level === 'info' ? msg : `${level.toUpperCase()} ${msg}`);
    if (this.pending >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.send('warn', `${n} log lines were not stored in Redis (it was too slow or away); stdout has them`);
    }
    this.send(level, msg);
  }

  /** Lines lost to Redis errors or dropped so far (also printed when the run ends). */
  get lost(): number {
    return this.failed + this.dropped;
  }

  private send(level: LogLevel, msg: string): void {
    this.pending++;
    this.control.appendLog(this.where.jobId, { rank: this.where.rank, level, workerId: this.where.workerId, msg })
      .catch(() => void this.failed++)
      .finally(() => void this.pending--);
  }
}
