import type { Communicator } from '@tensorfleet/collective';
import { checkpointBucket, defaultAugmentation, evalPipeline, globalBatchOf, isElastic, recoveryOf, type JobPatch, type JobSpec, type MetricEntry } from '@tensorfleet/control';
import { jpegDecoder, readManifest, ShardLoader, type Batch, type DatasetManifest, type LoaderCursor, type ObjectStore } from '@tensorfleet/data';
import { describeModel, modelFamily, modelSections, tensorNames, tensorsToBytes, type CreateModelOptions } from '@tensorfleet/models';
import { checkpointPrefix, loadCheckpointTensors } from '../checkpoint/checkpoint';
import { TrainingError } from '../errors';
import { modelOptionsFromSpec } from '../from-spec';
import { checkTrainerState } from '../trainer/trainer';
import { createPlanTrainer } from '../parallel/create-plan-trainer';
import { pipelineStages, planLayout } from '../parallel/layout';
import { ParallelPlan } from '../parallel/plan';
import { hashPart, planComms, type PlanTrainer } from '../parallel/plan-trainer';
import { profileSections } from '../parallel/profile';
import { RunCheckpointer, type SnapshotPart } from './run-checkpointer';
import { resumeFromSurvivor, StepCommit, type HeldSummary, type SurvivorMemory } from './survivor-state';

/** Where a run's starting state came from: a survivor's memory, the S3 checkpoint, or a fresh start. */
export type ResumeSource = 'memory' | 'checkpoint' | 'start';

/** Why a run stopped before its last step. */
export type StopRequest = 'cancel' | 'pause' | null;

export interface RunOutcome {
  status: 'completed' | 'paused' | 'cancelled';
  step: number;
  /** sha256 of the weights this rank holds (equal within each part's replicas). */
  weightsHash: string;
  evalLoss?: number;
  evalAccuracy?: number;
  checkpointKey?: string;
}

/** What a run needs of its assignment (control's Assignment has it all). */
export interface RunAssignment {
  jobId: string;
  runId: string;
  membershipEpoch: number;
  rank: number;
  worldSize: number;
  spec: JobSpec;
  resume?: { checkpointKey: string; step: number };
  /**
   * Set by the coordinator's restart when a survivor of the last run said it holds a newer step
   * than the checkpoint: the ranks resume from the newest state one of them holds (else `resume`).
   */
  memory?: { step: number };
  /** Worker ids by rank, for the layout. */
  workers?: string[];
}

/** What the run tells the rest of the system; the worker writes it to Redis, a test records it. */
export interface RunReporter {
  /** Every rank, once its state is loaded: the step it starts at and where that state came from. */
  started(step: number, from: ResumeSource): Promise<void>;
  /** Rank 0, after each committed checkpoint. */
  checkpointed(key: string, step: number): Promise<void>;
  /** Rank 0: every step's training figures and every held-out evaluation, over all replicas. */
  metric(m: MetricEntry): Promise<void>;
  /** Rank 0: totalSteps and the layout at the start. */
  updateJob(patch: JobPatch): Promise<void>;
}

export interface RunContext {
  store: ObjectStore;
  /** The run's communicator over all its ranks (the worker joins it over ZeroMQ); null with one rank. */
  joinWorld(): Promise<Communicator | null>;
  reporter: RunReporter;
  /**
   * The stop request for this job seen in the worker's inbox that applies after `step`, the step
   * whose stop vote this is (a pause may name a later step).
   */
  stopRequested(step: number): StopRequest;
  log(msg: string): void;
  /** Where checkpoint parts are uploaded from; default 'thread' (see RunCheckpointerOptions.uploads). */
  checkpointUploads?: 'thread' | 'inline';
  /** The worker process's memory of its last stopped run (survivor-state.ts); without it no state survives a run. */
  memory?: SurvivorMemory;
  /** Every data-reading rank, after each step: the sample keys it trained on (tests check exactly-once coverage). */
  samplesSeen?(e: { step: number; epoch: number; rank: number; keys: string[] }): void;
}

/** An elastic run's data position (state.json `data`): global samples of the epoch's global order consumed. */
export interface GlobalDataPosition {
  order: 'global';
  epoch: number;
  samplesConsumed: number;
  globalBatch: number;
}

/** Deadline of the stage-time profile's exchange (balance: 'time'): profiling a section can take a while. */
const PROFILE_TIMEOUT_MS = 10 * 60_000;

/**
 * One rank of one job, from its assignment to the end (or to a pause or cancel every rank
 * agrees on), under any parallel plan: data parallelism, a pipeline, AlexNet's columns, or
 * their hybrids with data parallelism. The loop (resume, epochs, checkpoints, held-out
 * evaluation, the stop vote) is the same for all; the plan's trainer does the step. Ranks
 * agree on stopping through a small all-reduce each step, which also turns the replicas'
 * loss and accuracy into global figures: a rank that saw the stop request first cannot leave
 * its peers waiting in a collective.
 */
export async function runTraining(ctx: RunContext, a: RunAssignment): Promise<RunOutcome> {
  const { spec, rank } = a;
  const elastic = isElastic(spec);
  const plan = elastic ? elasticPlan(spec, a.worldSize) : new ParallelPlan(spec.parallelism);
  if (plan.worldSize !== a.worldSize) {
    throw new TrainingError('INVALID_OPTIONS', `the spec's plan (${plan.describe()}) needs ${plan.worldSize} ranks; the assignment has ${a.worldSize}`);
  }
  const place = plan.place(rank);
  const manifest = await readManifest(ctx.store, spec.dataset.bucket, spec.dataset.prefix);
  const modelOptions: CreateModelOptions = { ...modelOptionsFromSpec(spec, manifest), seed: spec.seed };
  const inputSize = describeModel(spec.model.name, modelOptions).inputSize;
  const role = plan.kind === 'pipeline' ? `stage ${place.stage} of replica ${place.replica}` : plan.kind === 'columns' ? `column ${place.stage} of replica ${place.replica}` : `replica ${place.replica}`;
  ctx.log(`job ${a.jobId}: rank ${rank}/${a.worldSize} (${role}; ${plan.describe()}), model ${spec.model.name} (${modelOptions.numClasses} classes, ${inputSize}px), run ${a.runId} epoch ${a.membershipEpoch}`);

  const world = a.worldSize > 1 ? await ctx.joinWorld() : null;
  let trainer: PlanTrainer | null = null;
  let commit: StepCommit | null = null;
  try {
    const comms = planComms(world, plan, rank);
    const data = new RunData(ctx, spec, manifest, plan, place.replica, inputSize, elastic);
    if (elastic && rank === 0) {
      const r = recoveryOf(spec);
      ctx.log(`job ${a.jobId}: elastic (${r.minDataParallel}..${r.maxDataParallel} replicas): ${plan.replicas} now, global batch ${globalBatchOf(spec)} = ${plan.replicas} × ${data.replicaBatch()}, in passes of ${data.passSize()}`);
    }
    const stepsPerEpoch = data.stepsPerEpoch();
    const totalSteps = spec.steps ?? (spec.epochs ?? 1) * stepsPerEpoch;
    const stageSections = plan.kind === 'pipeline' ? await resolveStages(ctx, spec, modelOptions, plan, world, data.microBatch()) : undefined;
    trainer = createPlanTrainer({
      spec, modelOptions, plan, rank, comms, stepsPerEpoch, totalSteps, stageSections,
      ...(elastic ? { elastic: { scheduleWorldSize: spec.parallelism.dataParallel, microBatchSize: data.passSize() } } : {}),
    });
    if (rank === 0) {
      const layout = planLayout(spec.model.name, modelOptions, plan, spec.optimizer.momentum, stageSections).map((l) => ({ ...l, ...(a.workers?.[l.rank] ? { workerId: a.workers[l.rank] } : {}) }));
      await ctx.reporter.updateJob({ totalSteps, layout });
      data.warnUnused(stepsPerEpoch);
    }
    commit = new StepCommit(plan, spec, elastic);
    return await train(ctx, a, plan, trainer, data, world, commit, stepsPerEpoch, totalSteps, stageSections);
  } catch (e) {
    // A survivor of a lost peer keeps its state at the last completed step for the restart.
    if (trainer && commit) holdState(ctx, a, commit, trainer);
    throw e;
  } finally {
    trainer?.dispose();
    await world?.close();
  }
}

/**
 * A pipeline's stages: the spec's cuts, or balanced by multiply-adds (the default: the same on
 * every rank, known before any weight exists, and what the job record shows when it is
 * queued), or by measured time: each rank times a share of the sections on its own backend
 * and every rank balances the same gathered times.
 */
async function resolveStages(ctx: RunContext, spec: JobSpec, opts: CreateModelOptions, plan: ParallelPlan, world: Communicator | null, microBatch: number): Promise<string[][]> {
  const sections = modelSections(spec.model.name, opts);
  if (plan.cuts || plan.balance !== 'time') return pipelineStages(sections, plan);
  const n = world?.worldSize ?? 1;
  const me = world?.rank ?? 0;
  const mine = sections.map((s) => s.name).filter((_, i) => i % n === me);
  const t0 = performance.now();
  const times = profileSections(spec.model.name, opts, mine, microBatch);
  const gathered = world ? ((await world.allGather(times, { timeoutMs: PROFILE_TIMEOUT_MS })) as number[][]) : [times];
  const costs = sections.map((_, i) => gathered[i % n][Math.floor(i / n)]);
  const stages = pipelineStages(sections, plan, costs);
  ctx.log(`stages balanced by measured time (${((performance.now() - t0) / 1000).toFixed(1)} s to profile ${mine.length} sections here): ${stages.map((s, k) => `${k}: ${s[0]}..${s[s.length - 1]} ${s.reduce((a, name) => a + costs[sections.findIndex((x) => x.name === name)], 0).toFixed(0)} ms`).join(', ')}`);
  return stages;
}

/**
 * An elastic job's plan on `worldSize` workers: that many replicas (elastic jobs are plain data
 * parallelism, specErrors checks), within the spec's range.
 */
function elasticPlan(spec: JobSpec, worldSize: number): ParallelPlan {
  const r = recoveryOf(spec);
  if (!(worldSize >= r.minDataParallel && worldSize <= r.maxDataParallel)) {
    throw new TrainingError('INVALID_OPTIONS', `the assignment has ${worldSize} ranks, outside the spec's recovery range ${r.minDataParallel}..${r.maxDataParallel}`);
  }
  return new ParallelPlan({ ...spec.parallelism, dataParallel: worldSize });
}

/** The loaders of this rank's replica: training shards (for the ranks that read data) and the held-out split. */
class RunData {
  readonly trainPipeline: ReturnType<typeof defaultAugmentation>;
  readonly valPipeline: 'eval' | 'tencrop' | 'none';

  constructor(
    private readonly ctx: RunContext,
    private readonly spec: JobSpec,
    readonly manifest: DatasetManifest,
    private readonly plan: ParallelPlan,
    private readonly replica: number,
    private readonly inputSize: number,
    readonly elastic = false,
  ) {
    this.trainPipeline = spec.augmentation ?? defaultAugmentation(modelFamily(spec.model.name), inputSize);
    this.valPipeline = evalPipeline(this.trainPipeline, spec.evaluation?.tenCrop ?? false);
    if (spec.evaluation?.tenCrop && this.valPipeline !== 'tencrop') {
      ctx.log(`evaluation.tenCrop needs the resnet or alexnet pipeline; this job trains with '${this.trainPipeline}', so held-out images are used as they are`);
    }
  }

  /** Samples each replica trains on per step: spec.batchSize, or for elastic runs its share of the constant global batch. */
  replicaBatch(): number {
    return this.elastic ? globalBatchOf(this.spec) / this.plan.replicas : this.spec.batchSize;
  }

  /**
   * Elastic runs: images per forward/backward pass, the spec's micro-batch (else its batchSize)
   * at most. Passes that divide the replica's share are the same groups of the global batch at
   * every size, so batch norm normalises the same samples together.
   */
  passSize(): number {
    return Math.min(this.spec.microBatchSize ?? this.spec.batchSize, this.replicaBatch());
  }

  loader(split: string, cursor?: LoaderCursor): ShardLoader {
    const global = this.elastic && split === 'train';
    return new ShardLoader({
      ...(global ? { order: 'global' as const } : {}),
      store: this.ctx.store,
      bucket: this.spec.dataset.bucket,
      prefix: this.spec.dataset.prefix,
      split,
      rank: this.replica,
      worldSize: this.plan.replicas,
      seed: this.spec.seed,
      batchSize: global ? this.replicaBatch() : this.spec.batchSize,
      pipeline: split === 'train' ? this.trainPipeline : this.valPipeline,
      inputSize: this.inputSize,
      dropLast: split === 'train',
      cursor,
    });
  }

  /** The same on every rank: every replica takes the smallest replica's share. */
  stepsPerEpoch(): number {
    const n = this.loader('train').batchesPerEpoch();
    if (n < 1) {
      throw new TrainingError('INVALID_OPTIONS', `dataset ${this.spec.dataset.bucket}/${this.spec.dataset.prefix} has too few training samples for ${this.plan.replicas} replicas × batch ${this.replicaBatch()}`);
    }
    return n;
  }

  microBatch(): number {
    return this.spec.batchSize / this.plan.microBatches;
  }

  /** Whole shards go to replicas and every replica takes the smallest share: say so when that leaves much out, with the fix. */
  warnUnused(stepsPerEpoch: number): void {
    const used = stepsPerEpoch * this.replicaBatch() * this.plan.replicas;
    const available = this.manifest.splits.train?.samples ?? used;
    if (used < 0.9 * available) {
      this.ctx.log(`each epoch trains on ${used} of the ${available} training samples (whole shards per replica, each replica takes the smallest replica's share, in whole batches); ` +
        'for more of them, ingest with equal shards (fleet ingest --samples-per-shard N, with a multiple of the replica count of shards)');
    }
  }
}

async function train(
  ctx: RunContext, a: RunAssignment, plan: ParallelPlan, trainer: PlanTrainer, data: RunData, world: Communicator | null,
  commit: StepCommit, stepsPerEpoch: number, totalSteps: number, stageSections: string[][] | undefined,
): Promise<RunOutcome> {
  const { rank, jobId, spec } = a;
  const place = trainer.place;
  const reads = plan.readsData(place);
  const bucket = checkpointBucket(spec);
  if (reads) {
    const decoder = jpegDecoder();
    ctx.log(`job ${jobId}: rank ${rank} decodes JPEGs with ${decoder.name}${decoder.reason ? ` (${decoder.reason})` : ''}`);
  }

  // Resume: this rank's weights and optimizer slots (by name, from whichever parts hold them, so
  // a checkpoint of any plan fits), the step and schedule, and this replica's data cursor.
  let cursor: LoaderCursor | undefined;
  let cursors: LoaderCursor[] | undefined;
  let step = 0;
  if (a.resume) {
    // A job reads only its own checkpoints: a key from elsewhere (another job's) is refused, not loaded.
    const own = checkpointPrefix(jobId);
    if (!a.resume.checkpointKey.startsWith(own) || a.resume.checkpointKey.split('/').includes('..')) {
      throw new TrainingError('INVALID_OPTIONS', `job ${jobId} cannot resume from ${a.resume.checkpointKey}: its checkpoints are under ${own}`);
    }
  }
  let from: ResumeSource = 'start';
  const survivor = a.memory && commit.enabled ? await fromSurvivor(ctx, a, world, trainer, plan, data) : null;
  // What this process held is taken (or stale) now: its state moves on with this run.
  ctx.memory?.clear();
  if (survivor) {
    ({ step, cursor, cursors } = survivor);
    from = 'memory';
  } else if (a.resume) {
    const ck = await loadCheckpointTensors(ctx.store, bucket, a.resume.checkpointKey, {
      weights: Object.keys(trainer.part.weightTensors()),
      optimizer: Object.keys(trainer.part.optimizerTensors()),
    });
    // Velocity buffers are checked by name (loadCheckpointTensors): their count is per rank.
    trainer.load(ck.weights, ck.optimizer, checkTrainerState(ck.state.trainer));
    step = ck.state.step;
    cursor = resumeCursor(ctx, a, plan, data, ck.state, place.replica);
    if (!data.elastic && (ck.state.cursors as LoaderCursor[] | undefined)?.length === plan.replicas && !ck.state.data) cursors = ck.state.cursors as LoaderCursor[];
    ctx.log(`job ${jobId}: resumed from ${a.resume.checkpointKey} at step ${step}${a.memory ? ' (no survivor holds a newer step)' : ''}`);
    from = 'checkpoint';
  } else {
    await trainer.broadcastInitialState();
  }
  trainer.part.markStatsCommitted();

  await ctx.reporter.started(step, from);
  let epoch = cursor?.epoch ?? Math.floor(step / stepsPerEpoch);
  commit.start(step, epoch, cursor, cursors);
  const interval = spec.checkpoint?.intervalSteps ?? 0;
  const checkpoints = new RunCheckpointer({
    store: ctx.store, bucket, jobId, rank, world, background: spec.checkpoint?.background ?? true, uploads: ctx.checkpointUploads ?? 'thread', keep: spec.checkpoint?.keep ?? 3,
    log: (m) => ctx.log(m), committed: (key, st) => ctx.reporter.checkpointed(key, st),
  });

  // The snapshot at this step boundary (host copies of the weights and optimizer slots, the
  // data positions, the trainer state); the upload and commit follow behind (run-checkpointer).
  const checkpoint = async (c: LoaderCursor | null) => {
    const cursors = world ? ((await world.allGather(reads ? c : null)) as (LoaderCursor | null)[]) : [c];
    const parts: SnapshotPart[] = [];
    if (trainer.writesCheckpoint()) {
      const { weights, optimizer } = trainer.checkpointTensors();
      const wb = tensorsToBytes(weights);
      parts.push({ kind: 'weights', body: wb, tensors: tensorNames(wb) });
      if (Object.keys(optimizer).length) {
        const ob = tensorsToBytes(optimizer);
        parts.push({ kind: 'optimizer', body: ob, tensors: tensorNames(ob) });
      }
    }
    await checkpoints.save(step, rank !== 0 ? null : {
      epoch: c?.epoch ?? epoch,
      step,
      // one per replica: its first stage's (every data-reading rank of a replica reads the same)
      cursors: Array.from({ length: plan.replicas }, (_, r) => cursors[plan.rankOf(r, 0)] as LoaderCursor),
      seed: spec.seed,
      trainer: trainer.state(),
      plan: { kind: plan.kind, replicas: plan.replicas, stages: plan.stages, microBatches: plan.microBatches, ...(stageSections ? { stageSections } : {}) },
      membership: { runId: a.runId, epoch: a.membershipEpoch, worldSize: a.worldSize },
      ...(data.elastic ? { data: globalPosition(c, epoch, globalBatchOf(spec)) } : {}),
    }, parts);
  };

  const evaluate = async () => {
    const ev = await trainer.evaluate(reads ? data.loader('val').batches(0) : null);
    ctx.log(`job ${jobId}: held-out at step ${step}: loss ${ev.loss.toFixed(4)}, top-1 ${(ev.accuracy * 100).toFixed(1)}%, top-5 ${(ev.top5 * 100).toFixed(1)}% (${ev.samples} images${data.valPipeline === 'tencrop' ? ', ten crops each' : ''})`);
    if (rank === 0) await ctx.reporter.metric({ kind: 'eval', step, epoch, loss: ev.loss, accuracy: ev.accuracy, lr: 0, imagesPerSec: 0, rank, ts: Date.now() });
    return ev;
  };

  let stop: StopRequest = null;
  training: while (step < totalSteps) {
    const loader = reads ? data.loader('train', cursor) : null;
    // Ranks without data step as many times as the data readers: the rest of this epoch.
    const batches: AsyncIterable<Batch | null> = loader ? loader.batches(epoch) : nulls(stepsPerEpoch - (step % stepsPerEpoch));
    cursor = undefined;
    for await (const batch of batches) {
      const t0 = performance.now();
      commit.begin(batch?.cursor ?? null);
      const r = await trainer.step(batch);
      // The step has disposed its tensors of the batch: the loader may refill its array.
      if (batch) loader!.recycle(batch);
      if (batch && ctx.samplesSeen) ctx.samplesSeen({ step: step + 1, epoch, rank, keys: batch.keys });
      // [loss·n, correct, n, cancel, pause, uploading, upload failed] summed over ranks: global
      // metrics, the stop vote, and whether the checkpoint in flight is up on every rank.
      const mine = ctx.stopRequested(step + 1);
      // Then each replica's loader position (StepCommit.voteSlots), for a survivor to know them all.
      const agg = Float32Array.of(r.loss * r.samples, r.accuracy * r.samples, r.samples, mine === 'cancel' ? 1 : 0, mine === 'pause' ? 1 : 0, ...(await checkpoints.flags()), ...commit.voteSlots(rank));
      if (world) await world.allReduce(agg, { op: 'sum' });
      step++;
      commit.completed(step, agg.subarray(7));
      await checkpoints.settle(agg[5], agg[6]);
      const seconds = (performance.now() - t0) / 1000;
      if (rank === 0) {
        await ctx.reporter.metric({ kind: 'train', step, epoch, loss: agg[0] / agg[2], accuracy: agg[1] / agg[2], lr: r.lr, imagesPerSec: agg[2] / seconds, stepsPerSec: 1 / seconds, rank, ts: Date.now() });
      }
      stop = agg[3] > 0 ? 'cancel' : agg[4] > 0 ? 'pause' : null;
      const atInterval = interval > 0 && step % interval === 0;
      if (atInterval || stop === 'pause') await checkpoint(batch?.cursor ?? null);
      if (stop === 'pause') await checkpoints.drain({ strict: true });
      if (stop || step >= totalSteps) break training;
    }
    epoch++;
    // An epoch ended (the run goes on): checkpoint when no step interval is set, and the
    // periodic held-out evaluation, whose result also drives the plateau schedule.
    if (interval === 0) await checkpoint({ epoch, position: 0 });
    const every = spec.evaluation?.everyEpochs;
    if (every && epoch % every === 0 && data.manifest.splits.val) await evaluate();
    commit.epochStarted(epoch);
  }

  const weightsHash = () => hashPart(trainer.part);
  if (stop === 'cancel') {
    // A cancel is also how the coordinator stops the survivors of a lost peer: keep the state for its restart.
    holdState(ctx, a, commit, trainer);
    return { status: 'cancelled', step, weightsHash: weightsHash() };
  }
  if (stop === 'pause') return { status: 'paused', step, weightsHash: weightsHash(), checkpointKey: checkpoints.lastKey };

  // Final checkpoint (so the run can be exported or fine-tuned), committed before the end, then held-out evaluation.
  if (interval === 0 || step % interval !== 0) await checkpoint({ epoch, position: 0 });
  await checkpoints.drain({ strict: true });
  let evalLoss: number | undefined;
  let evalAccuracy: number | undefined;
  if (spec.evaluation?.atEnd !== false && data.manifest.splits.val) {
    const ev = await evaluate();
    evalLoss = ev.loss;
    evalAccuracy = ev.accuracy;
  }
  return { status: 'completed', step, weightsHash: weightsHash(), evalLoss, evalAccuracy, checkpointKey: checkpoints.lastKey };
}

/**
 * A memory resume (the coordinator named a survivor's step): the newest state a rank holds,
 * broadcast from it, if it is newer than the checkpoint and its data position fits this run;
 * null otherwise (the checkpoint, or a fresh start, follows).
 */
async function fromSurvivor(ctx: RunContext, a: RunAssignment, world: Communicator | null, trainer: PlanTrainer, plan: ParallelPlan, data: RunData): Promise<{ step: number; cursor: LoaderCursor; cursors?: LoaderCursor[] } | null> {
  const globalBatch = globalBatchOf(a.spec);
  const fits = (s: HeldSummary) => (data.elastic ? s.position.data?.globalBatch === globalBatch : !s.position.data && s.position.cursors?.length === plan.replicas);
  const held = ctx.memory?.get(a.jobId, a.spec) ?? null;
  const got = await resumeFromSurvivor(world, trainer, held && fits(held) ? held : null, a.resume?.step ?? 0);
  if (!got) {
    if (a.rank === 0) ctx.log(`job ${a.jobId}: the restart named step ${a.memory!.step} in a survivor's memory, but no rank holds a newer state than ${a.resume ? `checkpoint ${a.resume.step}` : 'step 0'}`);
    return null;
  }
  const { root, summary } = got;
  const p = summary.position;
  const cursor = resumeCursor(ctx, a, plan, data, { epoch: p.epoch, cursors: p.cursors, data: p.data }, trainer.place.replica);
  ctx.log(`job ${a.jobId}: resumed at step ${summary.step} from the memory of rank ${root} (run ${summary.runId})${a.resume ? `, not from checkpoint ${a.resume.step}` : ''}`);
  return { step: summary.step, cursor, ...(p.cursors ? { cursors: p.cursors } : {}) };
}

/** Keeps this rank's state at the last completed step in the worker's memory, for the restart (or says why not). */
function holdState(ctx: RunContext, a: RunAssignment, commit: StepCommit, trainer: PlanTrainer): void {
  if (!ctx.memory) return;
  try {
    const r = commit.capture(trainer, a.jobId, a.runId);
    if ('state' in r) {
      ctx.memory.hold(r.state);
      ctx.log(`job ${a.jobId}: rank ${a.rank} keeps its state at step ${r.state.step} in memory for a restart (${(r.state.bytes.byteLength / 1e6).toFixed(1)} MB)`);
    } else {
      ctx.log(`job ${a.jobId}: rank ${a.rank} keeps no state in memory (${r.why}); a restart resumes from the checkpoint`);
    }
  } catch (e) {
    ctx.log(`job ${a.jobId}: rank ${a.rank} could not keep its state in memory: ${(e as Error).message}`);
  }
}

/** Where an elastic checkpoint says the data stands: the loader's global cursor (or an epoch's start). */
function globalPosition(c: LoaderCursor | null, epoch: number, globalBatch: number): GlobalDataPosition {
  return { order: 'global', epoch: c?.epoch ?? epoch, samplesConsumed: c?.position ?? 0, globalBatch };
}

/**
 * This replica's data cursor from a checkpoint. An elastic run takes the global position (it
 * means the same at any size); a run of the rank order takes its replica's cursor when the
 * checkpoint has one per replica of the same order. Otherwise the epoch starts again.
 */
function resumeCursor(ctx: RunContext, a: RunAssignment, plan: ParallelPlan, data: RunData, state: Record<string, unknown>, replica: number): LoaderCursor {
  const epoch = state.epoch as number;
  const g = state.data as GlobalDataPosition | undefined;
  const globalBatch = globalBatchOf(a.spec);
  if (data.elastic && g?.order === 'global' && g.globalBatch === globalBatch) {
    if (a.rank === 0) ctx.log(`job ${a.jobId}: data resumes at sample ${g.samplesConsumed} of epoch ${g.epoch}'s global order, on ${plan.replicas} replica${plan.replicas === 1 ? '' : 's'}`);
    return { epoch: g.epoch, position: g.samplesConsumed };
  }
  const cursors = (state.cursors ?? []) as LoaderCursor[];
  if (!data.elastic && !g && cursors.length === plan.replicas) return cursors[replica];
  if (a.rank === 0) {
    const why = data.elastic
      ? (g ? `its global batch was ${g.globalBatch}, this run's is ${globalBatch}` : 'it was written by a run that was not elastic (per-replica positions)')
      : g ? 'it holds a global (elastic) position and this run reads per replica' : `it has the data positions of ${cursors.length} replicas, this run has ${plan.replicas}`;
    ctx.log(`job ${a.jobId}: the checkpoint's data position does not fit this run (${why}): epoch ${epoch} starts again from its beginning`);
  }
  return { epoch, position: 0 };
}

async function* nulls(n: number): AsyncIterable<null> {
  for (let i = 0; i < n; i++) yield null;
}
