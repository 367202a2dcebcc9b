import { Injectable } from '@nestjs/common';
import { ControlPlane, JOB_STATES } from '@tensorfleet/control';
import { SchedulerService } from '../scheduler/scheduler.service';

/** The cluster in Prometheus' text exposition format (version 0.0.4). */
@Injectable()
export class MetricsService {
  constructor(private readonly control: ControlPlane, private readonly scheduler: SchedulerService) {}

  async render(): Promise<string> {
    const [jobs, workers, queue] = await Promise.all([
      this.control.listJobs({ limit: 100_000 }),
      this.control.listWorkers(),
      this.scheduler.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed'),
    ]);
    const out: string[] = [];
    const gauge = (name: string, help: string, rows: [Record<string, string | number>, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
      for (const [labels, v] of rows) out.push(`${name}${fmtLabels(labels)} ${Number.isFinite(v) ? v : 'NaN'}`);
    };
    gauge('tensorfleet_jobs', 'Jobs by state.', JOB_STATES.map((s) => [{ state: s }, jobs.filter((j) => j.state === s).length]));
    gauge('tensorfleet_workers_registered', 'Workers in the registry.', [[{}, workers.length]]);
    gauge('tensorfleet_workers_alive', 'Registered workers whose heartbeat has not expired.', [[{}, workers.filter((w) => w.alive).length]]);
    gauge('tensorfleet_workers_busy', 'Alive workers holding a job.', [[{}, workers.filter((w) => w.alive && w.state === 'busy').length]]);
    gauge('tensorfleet_queue_jobs', 'BullMQ jobs of the scheduler queue by state.', Object.entries(queue).map(([s, n]) => [{ state: s }, n]));
    const running = jobs.filter((j) => j.state === 'running');
    gauge('tensorfleet_job_step', 'Current step of each running job.', running.map((j) => [{ job: j.id }, j.step ?? 0]));
    gauge('tensorfleet_job_images_per_second', 'Training throughput of each running job (all ranks).', running.map((j) => [{ job: j.id }, j.imagesPerSec ?? 0]));
    gauge('tensorfleet_job_loss', 'Last training loss of each running job.', running.filter((j) => j.loss !== undefined).map((j) => [{ job: j.id }, j.loss!]));
    return out.join('\n') + '\n';
  }
}

function fmtLabels(labels: Record<string, string | number>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}
