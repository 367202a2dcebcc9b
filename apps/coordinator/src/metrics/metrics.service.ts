import { Injectable } from '@nestjs/common';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ACTIVE_JOB_STATES, ControlPlane, JOB_STATES, type JobRecord, type WorkerInfo } from '@tensorfleet/control';
import { SchedulerService } from '../scheduler/scheduler.service';

const QUEUE_STATES = ['waiting', 'prioritized', 'active', 'delayed'] as const;

/**
 * The cluster for Prometheus, on prom-client. Per scrape: one SCARD per job state, the
 * active jobs' records (from the per-state sets: never the history, so 10,000 finished
 * jobs cost nothing), the worker registry and BullMQ's counts. Per-job series exist only
 * for active jobs (queued, scheduled, running, paused), which bounds their cardinality.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  private readonly g: ReturnType<typeof gauges>;
  // Scrapes run one after another: each resets the gauges and sets them from its own reads.
  private last: Promise<unknown> = Promise.resolve();

  constructor(private readonly control: ControlPlane, private readonly scheduler: SchedulerService) {
    this.g = gauges(this.registry);
    collectDefaultMetrics({ register: this.registry, prefix: 'tensorfleet_coordinator_' });
  }

  render(): Promise<string> {
    const next = this.last.then(() => this.collect(), () => this.collect());
    this.last = next.catch(() => undefined);
    return next;
  }

  private async collect(): Promise<string> {
    const [counts, active, workers, queue] = await Promise.all([
      this.control.countJobsByState(),
      this.control.jobsInStates(ACTIVE_JOB_STATES),
      this.control.listWorkers(),
      this.scheduler.queue.getJobCounts(...QUEUE_STATES),
    ]);
    const now = Date.now();
    for (const gauge of Object.values(this.g)) gauge.reset();
    for (const s of JOB_STATES) this.g.jobs.set({ state: s }, counts[s]);
    for (const s of QUEUE_STATES) this.g.queue.set({ state: s }, queue[s] ?? 0);
    for (const j of active) this.setJob(j, now);
    this.setWorkers(workers, now);
    return this.registry.metrics();
  }

  private setJob(j: JobRecord, now: number): void {
    const job = { job: j.id };
    const running = j.state === 'running';
    this.g.jobInfo.set({ ...job, name: j.spec.name ?? '', model: j.spec.model.name, state: j.state }, 1);
    this.g.step.set(job, j.step ?? 0);
    if (j.totalSteps !== undefined) this.g.totalSteps.set(job, j.totalSteps);
    // A job that is not running trains at 0, whatever its last run's figures were.
    this.g.imagesPerSec.set(job, running ? j.imagesPerSec ?? 0 : 0);
    this.g.stepsPerSec.set(job, running ? j.stepsPerSec ?? 0 : 0);
    if (j.loss !== undefined) this.g.loss.set(job, j.loss);
    this.g.restarts.set(job, j.restarts?.length ?? 0);
    if (j.lastCheckpointAt !== undefined) this.g.checkpointAge.set(job, Math.max(0, (now - j.lastCheckpointAt) / 1000));
  }

  private setWorkers(workers: WorkerInfo[], now: number): void {
    this.g.registered.set(workers.length);
    this.g.alive.set(workers.filter((w) => w.alive).length);
    this.g.busy.set(workers.filter((w) => w.alive && w.state === 'busy').length);
    for (const w of workers) {
      const worker = { worker: w.id };
      this.g.workerInfo.set({ ...worker, host: w.host, backend: w.backend, device: w.device }, 1);
      const state = !w.alive ? 'lost' : w.state;
      for (const s of ['idle', 'busy', 'lost']) this.g.workerState.set({ ...worker, state: s }, s === state ? 1 : 0);
      this.g.heartbeatAge.set(worker, Math.max(0, (now - w.lastSeen) / 1000));
    }
  }
}

function gauges(registry: Registry) {
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  return {
    jobs: gauge('tensorfleet_jobs', 'Jobs by state (all of the history).', ['state']),
    queue: gauge('tensorfleet_queue_jobs', 'BullMQ jobs of the scheduler queue by state.', ['state']),
    registered: gauge('tensorfleet_workers_registered', 'Workers in the registry.'),
    alive: gauge('tensorfleet_workers_alive', 'Registered workers whose heartbeat has not expired.'),
    busy: gauge('tensorfleet_workers_busy', 'Alive workers holding a job.'),
    jobInfo: gauge('tensorfleet_job_info', 'Always 1, one series per active job: its name, model and state.', ['job', 'name', 'model', 'state']),
    step: gauge('tensorfleet_job_step', 'Current step of each active job.', ['job']),
    totalSteps: gauge('tensorfleet_job_total_steps', 'Steps each active job trains in all.', ['job']),
    imagesPerSec: gauge('tensorfleet_job_images_per_second', 'Training throughput of each active job, all ranks (0 unless running).', ['job']),
    stepsPerSec: gauge('tensorfleet_job_steps_per_second', 'Training steps per second of each active job (0 unless running).', ['job']),
    loss: gauge('tensorfleet_job_loss', 'Last training loss of each active job.', ['job']),
    restarts: gauge('tensorfleet_job_restarts', 'Automatic restarts of each active job after a lost worker.', ['job']),
    checkpointAge: gauge('tensorfleet_job_checkpoint_age_seconds', 'Seconds since the last committed checkpoint of each active job that has one.', ['job']),
    workerInfo: gauge('tensorfleet_worker_info', 'Always 1, one series per registered worker: its host, backend and device.', ['worker', 'host', 'backend', 'device']),
    workerState: gauge('tensorfleet_worker_state', '1 for the state each registered worker is in (idle, busy, lost), else 0.', ['worker', 'state']),
    heartbeatAge: gauge('tensorfleet_worker_heartbeat_age_seconds', 'Seconds since each registered worker\'s last heartbeat.', ['worker']),
  };
}
