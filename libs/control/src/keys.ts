/** The Redis key layout (docs/contracts.md, "@tensorfleet/control"). */
export class ControlKeys {
  constructor(readonly prefix: string) {}
  workers(): string { return `${this.prefix}workers`; }
  /** Index of the workers whose state is idle: a claim reads it, not the whole registry. */
  idleWorkers(): string { return `${this.prefix}workers:idle`; }
  /** Pub/sub channel (not a key): a worker became idle or registered; waiting claims retry at once. */
  workersFreedChannel(): string { return `${this.prefix}workers:freed`; }
  /** Index of the workers a job's claims marked busy (its re-claim after a coordinator died). */
  jobClaims(id: string): string { return `${this.prefix}job:${id}:claimed`; }
  worker(id: string): string { return `${this.prefix}worker:${id}`; }
  alive(id: string): string { return `${this.prefix}worker:${id}:alive`; }
  inbox(id: string): string { return `${this.prefix}worker:${id}:inbox`; }
  jobs(): string { return `${this.prefix}jobs`; }
  logs(id: string): string { return `${this.prefix}job:${id}:logs`; }
  /** Set of the ids of the jobs in one state: counts and active jobs without a scan of the history. */
  jobsInState(state: string): string { return `${this.prefix}jobs:state:${state}`; }
  /** Present once the state sets have been built from the job records (ControlPlane.indexJobStates). */
  jobStateIndexMarker(): string { return `${this.prefix}jobs:state-index`; }
  job(id: string): string { return `${this.prefix}job:${id}`; }
  metrics(id: string): string { return `${this.prefix}job:${id}:metrics`; }
  events(id: string): string { return `${this.prefix}job:${id}:events`; }
  /** Jobs waiting for workers, in the scheduler's order (apps/coordinator WaitQueue). */
  waiting(): string { return `${this.prefix}sched:waiting`; }
}
