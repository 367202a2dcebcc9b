import { Injectable } from '@nestjs/common';
import { ControlPlane, type WorkerInfo } from '@tensorfleet/control';

@Injectable()
export class WorkersService {
  constructor(private readonly control: ControlPlane) {}

  /** The registry, sorted by id, each with `alive` from its heartbeat key. */
  list(): Promise<WorkerInfo[]> {
    return this.control.listWorkers();
  }
}
