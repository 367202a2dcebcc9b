import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ControlPlane } from '@tensorfleet/control';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';
import { trimJobHistory } from './job-history';

/** Keeps the job history at jobHistory jobs (FLEET_JOB_HISTORY), so Redis memory has a bound. */
@Injectable()
export class JobHistoryService implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger('Jobs');
  private timer?: NodeJS.Timeout;

  constructor(private readonly control: ControlPlane, @Inject(COORDINATOR_CONFIG) private readonly cfg: CoordinatorConfig) {}

  onModuleInit(): void {
    if (this.cfg.jobHistory === 0) return;
    this.timer = setInterval(() => void this.trim(), 30_000);
    this.timer.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.timer);
  }

  private async trim(): Promise<void> {
    try {
      const n = await trimJobHistory(this.control, this.cfg.jobHistory);
      if (n) this.log.log(`deleted the ${n} oldest finished job(s) beyond the history length ${this.cfg.jobHistory} (FLEET_JOB_HISTORY)`);
    } catch (e) {
      this.log.warn(`trimming the job history failed: ${(e as Error).message}`);
    }
  }
}
