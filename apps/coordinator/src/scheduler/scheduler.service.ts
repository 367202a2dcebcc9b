import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { ControlPlane, openRedis, type JobRecord } from '@tensorfleet/control';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';
import { GangScheduler, isActive } from './gang-scheduler';

export interface QueuedJobData {
  jobId: string;
  /** JobRecord.attempt when queued: an older queueing that is still around does nothing. */
  attempt?: number;
}

/**
 * The BullMQ side: a priority queue of submitted jobs and a worker whose processor is the
 * gang scheduler. A BullMQ job lives as long as the training job is queued or running.
 */
@Injectable()
export class SchedulerService implements OnApplicationBootstrap, OnApplicationShutdown {
  readonly queue: Queue<QueuedJobData>;
  private worker?: Worker<QueuedJobData>;
  private readonly gang: GangScheduler;
  private readonly logger = new Logger('Scheduler');
  private readonly connections: Redis[] = [];
  private closed = false;
  private unsubscribe?: () => Promise<void>;

  constructor(@Inject(COORDINATOR_CONFIG) private readonly cfg: CoordinatorConfig, private readonly control: ControlPlane) {
    this.queue = new Queue<QueuedJobData>(cfg.queueName, { connection: this.connection(), prefix: cfg.prefix });
    this.gang = new GangScheduler(control, {
      claimBackoffMs: cfg.claimBackoffMs, claimMaxBackoffMs: cfg.claimMaxBackoffMs, followPollMs: cfg.followPollMs, staleBusyMs: cfg.staleBusyMs, reserveAfterMs: cfg.reserveAfterMs,
      log: (m) => this.logger.log(m),
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    this.worker = new Worker<QueuedJobData>(this.cfg.queueName, (job) => this.process(job), {
      connection: this.connection(),
      prefix: this.cfg.prefix,
      concurrency: this.cfg.concurrency,
      lockDuration: this.cfg.lockDurationMs,
      stalledInterval: this.cfg.lockDurationMs,
      // A job is "stalled" whenever its coordinator died: that is expected, never a reason to drop it.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
    });
    this.worker.on('error', (e) => this.logger.error(`BullMQ worker: ${e.message}`));
    // A subscriber connection of its own: waiting jobs claim as soon as workers are freed.
    this.unsubscribe = await this.control.onWorkersFreed(this.connection(), () => this.gang.workersFreed());
    await this.reconcile();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    this.gang.close();
    await this.unsubscribe?.();
    // force: do not wait for the processors, which follow jobs for as long as they train;
    // their locks lapse and another coordinator takes them over.
    await this.worker?.close(true);
    await this.queue.close();
    for (const c of this.connections) c.disconnect();
  }

  /** Puts a job (state queued in Redis) on the BullMQ queue; higher spec.priority runs first. */
  async enqueue(job: JobRecord): Promise<void> {
    // In the wait queue at once: a job that waits for a scheduler slot outranks lower priorities too.
    await this.gang.waiting.add(job);
    await this.queue.add('train', { jobId: job.id, attempt: job.attempt }, {
      jobId: queueJobId(job),
      // BullMQ: 1 is the highest priority; spec.priority is -1000..1000, higher first.
      priority: 1001 - job.spec.priority,
      removeOnComplete: true,
      removeOnFail: true,
      attempts: 1,
    });
  }

  private async process(job: Job<QueuedJobData>): Promise<string> {
    let outcome;
    for (let delay = 500; ; delay = Math.min(delay * 2, 10_000)) {
      try {
        outcome = await this.gang.run(job.data.jobId, job.data.attempt);
        break;
      } catch (e) {
        if (this.closed) return new Promise<string>(() => undefined);
        // Redis hiccups must not drop a job: run() reads all its state back, so retry it.
        this.logger.error(`job ${job.data.jobId}: scheduler error (${(e as Error).message}); retrying in ${delay} ms`);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    // Shutting down: never settle, so BullMQ neither completes nor fails the job; its
    // lock lapses and the next coordinator re-runs the processor, which reattaches.
    if (outcome === 'shutdown') return new Promise<string>(() => undefined);
    return outcome;
  }

  /**
   * Jobs Redis says are active but no BullMQ job carries (e.g. lost between createJob and
   * enqueue) go back on the queue. Adding an id that exists is a no-op in BullMQ.
   */
  private async reconcile(): Promise<void> {
    // From the per-state sets: every active job however long the history, and none of the finished ones read.
    const jobs = await this.control.jobsInStates(['queued', 'scheduled', 'running']);
    for (const j of jobs.filter((x) => isActive(x.state))) {
      const existing = await this.queue.getJob(queueJobId(j));
      if (!existing) {
        this.logger.warn(`job ${j.id} is ${j.state} in Redis but not on the queue: re-queued`);
        await this.enqueue(j);
      }
    }
  }

  private connection(): Redis {
    // BullMQ needs maxRetriesPerRequest: null: its blocking reads must wait out a Redis restart, not fail.
    const c = openRedis(this.cfg.redisUrl, this.cfg.redisTls, `bullmq-${this.connections.length + 1}`, (l) => this.logger.warn(l), { maxRetriesPerRequest: null });
    this.connections.push(c);
    return c;
  }
}

/** One BullMQ job per time the job is queued (BullMQ ids may not contain ':'). */
export function queueJobId(job: Pick<JobRecord, 'id' | 'attempt'>): string {
  return `${job.id}-a${job.attempt}`;
}
