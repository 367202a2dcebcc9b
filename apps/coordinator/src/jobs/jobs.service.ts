import { BadGatewayException, ConflictException, Inject, Injectable, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { COORDINATOR_CONFIG, type CoordinatorConfig } from '../config/coordinator-config';
import {
  applyJobSpecDefaults, ControlPlane, defaultAugmentation, evalPipeline, respecParallelism, specErrors, worldSizeOf, type JobRecord, type JobSpec, type JobSpecInput, type JobState, type PauseJobInput, type ResumeJobInput,
} from '@tensorfleet/control';
import { mayAccess, pathErrors, type Principal } from '../auth/principal';
import { isNotFound, ObjectStore, readManifest, type DatasetManifest } from '@tensorfleet/data';
import { modelOptionsFromSpec, ParallelPlan, planErrors, planLayout } from '@tensorfleet/training';
import { ModelCatalog } from '../core/model-catalog';
import { REQUEUED, resumeWhere } from '../scheduler/gang-scheduler';
import { SchedulerService } from '../scheduler/scheduler.service';
import { fieldErrors, forbiddenFields } from './job-validation';

@Injectable()
export class JobsService {
  private readonly maxWorkers: number | undefined;

  constructor(
    private readonly control: ControlPlane,
    private readonly store: ObjectStore,
    private readonly models: ModelCatalog,
    private readonly scheduler: SchedulerService,
    @Inject(COORDINATOR_CONFIG) cfg: CoordinatorConfig,
  ) {
    this.maxWorkers = cfg.maxWorkers;
  }

  /**
   * Checks what the schema cannot (the token may name these paths, the model is registered,
   * the parallel plan fits it, the dataset's manifest exists and has enough training samples),
   * then records the job with its layout and owner and queues it. Nothing is written, and no
   * object read, before every check that can be made without it passed.
   */
  async submit(input: JobSpecInput, who: Principal | null = null): Promise<JobRecord> {
    const spec = applyJobSpecDefaults(input);
    const combined = specErrors(spec);
    if (combined.length) throw fieldErrors(combined);
    // Before the manifest is read: a 400 about another tenant's manifest would tell what it holds.
    const foreign = pathErrors(who, spec);
    if (foreign.length) throw forbiddenFields(foreign);
    const model = this.models.get(spec.model.name);
    if (!model) {
      const names = this.models.list().map((m) => m.name).join(', ');
      throw fieldErrors([{ field: 'model.name', message: `"${spec.model.name}" is not a registered model; known: ${names}` }]);
    }
    const manifest = await this.manifest(spec);
    const modelOptions = modelOptionsFromSpec(spec, manifest);
    const unfit = planErrors(spec, modelOptions);
    if (unfit.length) throw fieldErrors(unfit);
    this.checkCapacity(spec);
    if (spec.model.numClasses !== undefined && spec.model.numClasses < manifest.classes.length) {
      throw fieldErrors([{ field: 'model.numClasses', message: `${spec.model.numClasses} is fewer than the dataset's ${manifest.classes.length} classes` }]);
    }
    const inputSize = spec.model.inputSize ?? manifest.imageSize?.[0] ?? model.defaultInputSize;
    const augmentation = spec.augmentation ?? defaultAugmentation(model.family, inputSize);
    if (spec.evaluation.tenCrop && evalPipeline(augmentation, true) !== 'tencrop') {
      throw fieldErrors([{ field: 'evaluation.tenCrop', message: `ten crops of 224 need the resnet or alexnet pipeline; this job would train with '${augmentation}' (${inputSize}-pixel input)` }]);
    }
    const samples = manifest.splits.train?.samples ?? 0;
    const perStep = spec.batchSize * spec.parallelism.dataParallel;
    if (samples < perStep) {
      throw fieldErrors([{ field: 'batchSize', message: `batchSize × dataParallel = ${perStep} is more than the ${samples} training samples of s3://${spec.dataset.bucket}/${spec.dataset.prefix}` }]);
    }
    const totalSteps = spec.steps ?? (spec.epochs ?? 1) * Math.floor(samples / perStep);
    const layout = planLayout(spec.model.name, modelOptions, new ParallelPlan(spec.parallelism), spec.optimizer.momentum);
    const job = await this.control.createJob(spec, { totalSteps, layout, ...(who?.name ? { owner: who.name } : {}) });
    try {
      await this.scheduler.enqueue(job);
    } catch (e) {
      await this.control.transitionJob(job.id, ['queued'], { state: 'failed', error: `could not be queued: ${(e as Error).message}`, finishedAt: Date.now() });
      throw new ServiceUnavailableException(`job ${job.id} could not be queued: ${(e as Error).message}`);
    }
    return job;
  }

  /**
   * A page of jobs, newest first. A scoped token's page holds only its own jobs: the history
   * is read in chunks and filtered (no index per owner: a scan of at most the kept history).
   */
  async list(state?: JobState, page: { limit: number; offset: number } = { limit: 100, offset: 0 }, who: Principal | null = null): Promise<JobRecord[]> {
    if (!who?.scopes) return this.control.listJobs({ state, ...page });
    const own: JobRecord[] = [];
    const chunk = 1000;
    for (let from = 0; own.length < page.offset + page.limit; from += chunk) {
      const jobs = await this.control.listJobs({ state, limit: chunk, offset: from });
      own.push(...jobs.filter((j) => mayAccess(who, j)));
      if (jobs.length < chunk) break;
    }
    return own.slice(page.offset, page.offset + page.limit);
  }

  /** The job, or a 404 (also for another name's job under a scoped token: its existence is not told). */
  async get(id: string, who: Principal | null = null): Promise<JobRecord> {
    const job = await this.control.getJob(id);
    if (!job || !mayAccess(who, job)) throw new NotFoundException(`no job ${id}; GET /jobs lists them`);
    return job;
  }

  /** Any job not yet ended; the running ranks get `cancel`. */
  async cancel(id: string, who: Principal | null = null): Promise<JobRecord> {
    const job = await this.get(id, who);
    const r = await this.control.transitionJob(id, ['queued', 'scheduled', 'running', 'paused'], { state: 'cancelled', finishedAt: Date.now(), pauseRequested: null, pauseAtStep: null });
    if (!r.ok) throw new ConflictException(`job ${id} is ${r.previous}: nothing to cancel`);
    if (r.previous === 'running') await this.tell(job, 'cancel', 'cancelled through the API');
    await this.control.appendEvent(id, { type: 'job-state', rank: -1, state: 'cancelled', message: 'cancelled through the API' });
    return this.get(id);
  }

  /**
   * A queued job is paused at once. A running one gets `pause`: its ranks checkpoint and
   * stop, and the scheduler marks it paused when all of them have (pauseRequested meanwhile).
   * With `atStep`, a queued or running job goes on until that step and pauses after it: the
   * record keeps the step (pauseAtStep) for every run's assignment, and the ranks of a run
   * under way are told.
   */
  async pause(id: string, who: Principal | null = null, body: PauseJobInput = {}): Promise<JobRecord> {
    const job = await this.get(id, who);
    if (body.atStep != null) return this.pauseAt(job, body.atStep);
    const now = await this.control.transitionJob(id, ['queued', 'scheduled'], { state: 'paused', pauseRequested: null, pauseAtStep: null });
    if (now.ok) {
      await this.control.appendEvent(id, { type: 'job-state', rank: -1, state: 'paused', message: 'paused before it started' });
      return this.get(id);
    }
    const later = await this.control.transitionJob(id, ['running'], { pauseRequested: Date.now() });
    if (!later.ok) throw new ConflictException(`job ${id} is ${later.previous}: only queued or running jobs can be paused`);
    await this.tell(job, 'pause', 'paused through the API');
    return this.get(id);
  }

  private async pauseAt(job: JobRecord, atStep: number): Promise<JobRecord> {
    const reached = job.step ?? 0;
    if (atStep <= reached) throw fieldErrors([{ field: 'atStep', message: `the job is at step ${reached} already: give a later step, or leave atStep out to pause after the step under way` }]);
    if (job.totalSteps !== undefined && atStep >= job.totalSteps) {
      throw fieldErrors([{ field: 'atStep', message: `the job ends at step ${job.totalSteps}: give a step before it` }]);
    }
    const r = await this.control.transitionJob(job.id, ['queued', 'scheduled', 'running'], { pauseAtStep: atStep });
    if (!r.ok) throw new ConflictException(`job ${job.id} is ${r.previous}: only queued or running jobs can be paused`);
    const now = await this.get(job.id);
    // A run under way learns it now; a run yet to start, from its assignment (the scheduler reads
    // the record again once the job is scheduled, so a run scheduled before it is told here).
    if (now.state === 'running' || now.state === 'scheduled') await this.control.stopRun(now, now.members ?? [], 'pause', `pause after step ${atStep} (through the API)`, atStep);
    await this.control.appendEvent(job.id, { type: 'job-state', rank: -1, state: now.state, message: `pausing after step ${atStep}` });
    return now;
  }

  /**
   * A paused or failed job goes back on the queue; its ranks resume from lastCheckpoint. With
   * `parallelism`, on another plan (checked as a submission is, before anything changes).
   */
  async resume(id: string, body: ResumeJobInput = {}, who: Principal | null = null): Promise<JobRecord> {
    const job = await this.get(id, who);
    let reshaped: Pick<JobRecord, 'spec' | 'layout' | 'totalSteps'> | null = null;
    if (body.parallelism) {
      if (job.state !== 'paused' && job.state !== 'failed') throw new ConflictException(`job ${id} is ${job.state}: only paused or failed jobs can be resumed`);
      const spec = respecParallelism(job.spec, body.parallelism);
      const combined = specErrors(spec);
      if (combined.length) throw fieldErrors(combined);
      const manifest = await this.manifest(spec);
      const modelOptions = modelOptionsFromSpec(spec, manifest);
      const unfit = planErrors(spec, modelOptions);
      if (unfit.length) throw fieldErrors(unfit);
      this.checkCapacity(spec);
      const perStep = spec.batchSize * spec.parallelism.dataParallel;
      const samples = manifest.splits.train?.samples ?? 0;
      if (samples < perStep) throw fieldErrors([{ field: 'parallelism.dataParallel', message: `batchSize × dataParallel = ${perStep} is more than the ${samples} training samples` }]);
      reshaped = {
        spec,
        layout: planLayout(spec.model.name, modelOptions, new ParallelPlan(spec.parallelism), spec.optimizer.momentum),
        totalSteps: spec.steps ?? (spec.epochs ?? 1) * Math.floor(samples / perStep),
      };
    }
    const r = await this.control.transitionJob(id, ['paused', 'failed'], {
      ...REQUEUED, pauseAtStep: null, attempt: job.attempt + 1, ...(reshaped ?? {}),
    });
    if (!r.ok) {
      const why = r.previous === 'running' && job.pauseRequested ? ' (still pausing: wait for state paused)' : '';
      throw new ConflictException(`job ${id} is ${r.previous}${why}: only paused or failed jobs can be resumed`);
    }
    const queued = await this.get(id);
    await this.scheduler.enqueue(queued);
    const where = resumeWhere(job);
    const plan = reshaped ? ` on ${new ParallelPlan(reshaped.spec.parallelism).describe()}` : '';
    await this.control.appendEvent(id, { type: 'job-state', rank: -1, state: 'queued', message: where + plan });
    return queued;
  }

  /** A job that needs more workers than the cluster can ever have would wait forever: a 400 instead. */
  private checkCapacity(spec: JobSpec): void {
    if (this.maxWorkers !== undefined && worldSizeOf(spec) > this.maxWorkers) {
      throw fieldErrors([{ field: 'parallelism', message: `the job needs ${worldSizeOf(spec)} workers (dataParallel × stages); this cluster has at most ${this.maxWorkers} (FLEET_MAX_WORKERS)` }]);
    }
  }

  private async tell(job: JobRecord, type: 'cancel' | 'pause', reason: string): Promise<void> {
    // Read again: the run may have changed since the caller's read.
    const now = (await this.control.getJob(job.id)) ?? job;
    await this.control.stopRun(now, now.members ?? [], type, reason);
  }

  private async manifest(spec: JobSpec): Promise<DatasetManifest> {
    const where = `s3://${spec.dataset.bucket}/${spec.dataset.prefix}/manifest.json`;
    let exists: boolean;
    try {
      exists = await this.store.exists(spec.dataset.bucket, `${spec.dataset.prefix}/manifest.json`);
    } catch (e) {
      if (/InvalidBucketName/.test((e as Error).name) || (e as { code?: string }).code === 'InvalidBucketName') {
        throw fieldErrors([{ field: 'dataset', message: `${(e as Error).message} (looking for ${where})` }]);
      }
      if (!isNotFound(e)) throw new BadGatewayException(`object store error looking for ${where}: ${(e as Error).message}`);
      exists = false;
    }
    if (!exists) throw fieldErrors([{ field: 'dataset', message: `no dataset manifest at ${where}; ingest one with \`fleet ingest\`` }]);
    try {
      return await readManifest(this.store, spec.dataset.bucket, spec.dataset.prefix);
    } catch (e) {
      throw fieldErrors([{ field: 'dataset', message: `${where} is not a usable manifest: ${(e as Error).message}` }]);
    }
  }
}
