/** The Redis key layout (docs/contracts.md, "@tensorfleet/control"). */
export class ControlKeys {
  constructor(readonly prefix: string) {}
  workers(): string { return `${this.prefix}workers`; }
  worker(id: string): string { return `${this.prefix}worker:${id}`; }
  alive(id: string): string { return `${this.prefix}worker:${id}:alive`; }
  inbox(id: string): string { return `${this.prefix}worker:${id}:inbox`; }
  jobs(): string { return `${this.prefix}jobs`; }
  job(id: string): string { return `${this.prefix}job:${id}`; }
  metrics(id: string): string { return `${this.prefix}job:${id}:metrics`; }
  events(id: string): string { return `${this.prefix}job:${id}:events`; }
  /** Jobs waiting for workers, in the scheduler's order (apps/coordinator WaitQueue). */
  waiting(): string { return `${this.prefix}sched:waiting`; }
}
