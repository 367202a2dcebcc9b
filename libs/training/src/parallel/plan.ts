import { TrainingError } from '../errors';

export type PlanKind = 'data' | 'pipeline' | 'columns';
export type PipelineSchedule = 'gpipe' | '1f1b';
export type StageBalance = 'macs' | 'time';

/** The job-spec fields a plan is made from (`parallelism`, with the spec's defaults applied). */
export interface ParallelismSpec {
  dataParallel: number;
  modelParallel?: {
    kind: 'pipeline' | 'alexnet-columns';
    stages: number;
    microBatches: number;
    schedule?: PipelineSchedule;
    balance?: StageBalance;
    /** Sections where stages 1.. start (pipeline), instead of balancing. */
    cuts?: string[];
  };
}

/** Where one rank sits: its data-parallel replica and its stage (pipeline) or column (AlexNet). */
export interface RankPlace {
  rank: number;
  replica: number;
  /** Pipeline stage or AlexNet column; 0 in plain data parallelism. */
  stage: number;
}

/**
 * A job's parallelism as ranks: `replicas` data-parallel copies of the model, each a pipeline
 * of `stages` workers (or AlexNet's two columns, or one worker). Rank = replica × stages +
 * stage, so the stages of a replica are neighbours: the workers a scheduler places together
 * (one host) exchange the activations, and replicas exchange only gradients. Every rank holds
 * the world communicator and, where the plan has them, two groups: the replicas of its stage
 * (they all-reduce that stage's gradients) and the stages of its replica (they pass activations).
 */
export class ParallelPlan {
  readonly kind: PlanKind;
  readonly replicas: number;
  readonly stages: number;
  readonly worldSize: number;
  /** Micro-batches per step (pipeline and columns); 1 = the whole batch at once. */
  readonly microBatches: number;
  readonly schedule: PipelineSchedule;
  readonly balance: StageBalance;
  readonly cuts: string[] | undefined;

  constructor(p: ParallelismSpec) {
    const mp = p.modelParallel;
    if (!Number.isInteger(p.dataParallel) || p.dataParallel < 1) throw new TrainingError('INVALID_OPTIONS', `parallelism.dataParallel must be a positive integer, got ${p.dataParallel}`);
    this.kind = !mp ? 'data' : mp.kind === 'pipeline' ? 'pipeline' : 'columns';
    this.replicas = p.dataParallel;
    this.stages = !mp ? 1 : mp.kind === 'alexnet-columns' ? 2 : mp.stages;
    this.microBatches = mp?.microBatches ?? 1;
    this.schedule = mp?.schedule ?? 'gpipe';
    this.balance = mp?.balance ?? 'macs';
    this.cuts = mp?.cuts;
    if (!Number.isInteger(this.stages) || this.stages < 1) throw new TrainingError('INVALID_OPTIONS', `parallelism.modelParallel.stages must be a positive integer, got ${this.stages}`);
    if (!Number.isInteger(this.microBatches) || this.microBatches < 1) throw new TrainingError('INVALID_OPTIONS', `parallelism.modelParallel.microBatches must be a positive integer, got ${this.microBatches}`);
    this.worldSize = this.replicas * this.stages;
  }

  place(rank: number): RankPlace {
    if (!Number.isInteger(rank) || rank < 0 || rank >= this.worldSize) throw new RangeError(`rank ${rank} is not in [0, ${this.worldSize})`);
    return { rank, replica: Math.floor(rank / this.stages), stage: rank % this.stages };
  }

  rankOf(replica: number, stage: number): number {
    return replica * this.stages + stage;
  }

  /** World ranks of the replicas of `stage`, in replica order: its data-parallel group. */
  replicaGroup(stage: number): number[] {
    return Array.from({ length: this.replicas }, (_, r) => this.rankOf(r, stage));
  }

  /** World ranks of `replica`'s stages (or columns), in stage order. */
  stageGroup(replica: number): number[] {
    return Array.from({ length: this.stages }, (_, s) => this.rankOf(replica, s));
  }

  /** The rank whose batch size, loss and accuracy stand for its replica: the last stage, column 0. */
  reportsLoss(place: RankPlace): boolean {
    return this.kind === 'pipeline' ? place.stage === this.stages - 1 : place.stage === 0;
  }

  /** Whether this rank reads training batches: the first stage of a pipeline, every column, every replica. */
  readsData(place: RankPlace): boolean {
    return this.kind !== 'pipeline' || place.stage === 0;
  }

  /** "2 × pipeline of 3 stages (1f1b, 4 micro-batches)" */
  describe(): string {
    const each = this.kind === 'data' ? 'one worker' : this.kind === 'columns' ? "AlexNet's 2 columns" : `a pipeline of ${this.stages} stages (${this.schedule}, ${this.microBatches} micro-batches)`;
    return `${this.replicas} replica${this.replicas === 1 ? '' : 's'}, each ${each}: ${this.worldSize} worker${this.worldSize === 1 ? '' : 's'}`;
  }
}
