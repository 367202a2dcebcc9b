import { ConflictException, Inject, Injectable, Logger, NotFoundException, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ControlPlane, type WorkerInfo } from '@tensorfleet/control';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';

@Injectable()
export class WorkersService implements OnModuleInit, OnModuleDestroy {
  private readonly log = new Logger('Workers');
  private sweep?: NodeJS.Timeout;

  constructor(private readonly control: ControlPlane, @Inject(COORDINATOR_CONFIG) private readonly cfg: CoordinatorConfig) {}

  /** Dead workers leave the registry after forgetLostAfterMs, checked a few times per period. */
  onModuleInit(): void {
    const every = Math.max(1000, Math.min(60_000, Math.round(this.cfg.forgetLostAfterMs / 4)));
    this.sweep = setInterval(() => void this.forgetLost(), every);
    this.sweep.unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweep);
  }

  /** The registry, sorted by id, each with `alive` from its heartbeat key. */
  list(page?: { limit: number; offset: number }): Promise<WorkerInfo[]> {
    return this.control.listWorkers(page);
  }

  /** Removes one lost worker now; an alive one is a 409 (stop its process instead). */
  async forget(id: string): Promise<void> {
    const [gone] = await this.control.forgetLostWorkers(0, [id]);
    if (gone) return;
    const w = await this.control.getWorker(id);
    if (!w) throw new NotFoundException(`no worker "${id}" in the registry`);
    throw new ConflictException(`worker "${id}" is alive (heartbeat ${Date.now() - w.lastSeen} ms ago); stop its process first, it unregisters itself`);
  }

  private async forgetLost(): Promise<void> {
    try {
      const gone = await this.control.forgetLostWorkers(this.cfg.forgetLostAfterMs);
      if (gone.length) this.log.log(`forgot ${gone.length} worker(s) lost for over ${Math.round(this.cfg.forgetLostAfterMs / 1000)} s: ${gone.join(', ')}`);
    } catch (e) {
      this.log.warn(`sweeping lost workers failed: ${(e as Error).message}`);
    }
  }
}
