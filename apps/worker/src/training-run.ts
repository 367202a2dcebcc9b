import { createHash } from 'node:crypto';
import { checkpointBucket, defaultAugmentation, evalPipeline, type Assignment, type ControlPlane, type JobSpec } from '@tensorfleet/control';
import type { CollectiveNode, Communicator } from '@tensorfleet/collective';
import { ObjectStore, ShardLoader, jpegDecoder, readManifest, type DatasetManifest, type LoaderCursor } from '@tensorfleet/data';
import { createModel, modelFamily, weightsToBytes, weightsFromBytes } from '@tensorfleet/models';
import {
  createTrainerFromSpec,
  modelOptionsFromSpec,
  loadCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  type Trainer,
} from '@tensorfleet/training';

/** Why a run stopped before its last step. */
export type StopRequest = 'cancel' | 'pause' | null;

export interface RunOutcome {
  status: 'completed' | 'paused' | 'cancelled';
  step: number;
  weightsHash: string;
  evalLoss?: number;
  evalAccuracy?: number;
  checkpointKey?: string;
}

export interface RunContext {
  workerId: string;
  control: ControlPlane;
  store: ObjectStore;
  node: CollectiveNode;
  collectiveTimeoutMs: number;
  /** The latest stop request for this job seen in the worker's inbox. */
  stopRequested: () => StopRequest;
  log: (msg: string) => void;
}

/**
 * Runs one rank of one job from its assignment to the end (or to a pause or cancel that
 * every rank agrees on). Ranks agree on stopping through a small all-reduce each step,
 * which also turns the per-rank loss and accuracy into global figures: a rank that saw
 * the stop request first cannot leave its peers waiting in a collective.
 */
export async function runAssignment(ctx: RunContext, a: Assignment): Promise<RunOutcome> {
  const { spec, rank, worldSize } = a;
  const bucket = spec.dataset.bucket;
  const manifest = await readManifest(ctx.store, bucket, spec.dataset.prefix);
  const options = modelOptionsFromSpec(spec, manifest);
  const numClasses = options.numClasses;
  const model = createModel(spec.model.name, { ...options, seed: spec.seed });
  const modelInput = model.inputs[0].shape[1] as number;
  ctx.log(`job ${a.jobId}: rank ${rank}/${worldSize}, model ${spec.model.name} (${numClasses} classes, ${modelInput}px), run ${a.runId} epoch ${a.membershipEpoch}`);

  let comm: Communicator | null = null;
  try {
    if (worldSize > 1) {
      comm = await ctx.node.join({
        runId: a.runId,
        epoch: a.membershipEpoch,
        rank,
        worldSize,
        peers: a.peers,
        timeoutMs: ctx.collectiveTimeoutMs,
      });
    }
    return await train(ctx, a, spec, manifest, model, modelInput, comm);
  } finally {
    await comm?.close();
    model.dispose();
  }
}

async function train(
  ctx: RunContext,
  a: Assignment,
  spec: JobSpec,
  manifest: DatasetManifest,
  model: ReturnType<typeof createModel>,
  inputSize: number,
  comm: Communicator | null,
): Promise<RunOutcome> {
  const { rank, worldSize, jobId } = a;
  const bucket = spec.dataset.bucket;
  const trainPipeline = spec.augmentation ?? defaultAugmentation(modelFamily(spec.model.name), inputSize);
  const valPipeline = evalPipeline(trainPipeline, spec.evaluation?.tenCrop ?? false);
  if (spec.evaluation?.tenCrop && valPipeline !== 'tencrop') {
    ctx.log(`job ${jobId}: evaluation.tenCrop needs the resnet or alexnet pipeline; this job trains with '${trainPipeline}', so held-out images are used as they are`);
  }
  const decoder = jpegDecoder();
  ctx.log(`job ${jobId}: rank ${rank} decodes JPEGs with ${decoder.name}${decoder.reason ? ` (${decoder.reason})` : ''}`);
  const makeLoader = (split: string, cursor?: LoaderCursor) =>
    new ShardLoader({
      store: ctx.store,
      bucket,
      prefix: spec.dataset.prefix,
      split,
      rank,
      worldSize,
      seed: spec.seed,
      batchSize: spec.batchSize,
      pipeline: split === 'train' ? trainPipeline : valPipeline,
      inputSize,
      dropLast: split === 'train',
      cursor,
    });

  // Resume: weights, optimizer and schedule from the last committed checkpoint, and this
  // rank's data cursor, so the loader yields exactly what an uninterrupted run would have.
  let cursor: LoaderCursor | undefined;
  let startStep = 0;
  const probe = makeLoader('train');
  const stepsPerEpoch = probe.batchesPerEpoch();
  if (stepsPerEpoch < 1) {
    throw new Error(`dataset ${bucket}/${spec.dataset.prefix} has too few training samples for ${worldSize} ranks × batch ${spec.batchSize}`);
  }
  // Whole shards go to ranks and every rank takes the smallest rank's share, so unequal shards
  // (a small last one, few shards per rank) leave samples out of every epoch: say so, with the fix.
  const used = stepsPerEpoch * spec.batchSize * worldSize;
  const available = manifest.splits.train?.samples ?? used;
  if (rank === 0 && used < 0.9 * available) {
    ctx.log(`job ${jobId}: each epoch trains on ${used} of the ${available} training samples (whole shards per rank, each rank takes the smallest rank's share, in whole batches); ` +
      'for more of them, ingest with equal shards (fleet ingest --samples-per-shard N, with a multiple of the rank count of shards)');
  }
  const totalSteps = spec.steps ?? (spec.epochs ?? 1) * stepsPerEpoch;
  const trainer: Trainer = createTrainerFromSpec(spec, model, comm, { stepsPerEpoch, totalSteps });

  if (a.resume) {
    const ckpt = await loadCheckpoint(ctx.store, checkpointBucket(spec), a.resume.checkpointKey);
    weightsFromBytes(model, ckpt.weights);
    trainer.loadState(ckpt.optimizer, ckpt.state.trainer);
    startStep = ckpt.state.step;
    const cursors = ckpt.state.cursors as LoaderCursor[];
    cursor = cursors.length === worldSize ? cursors[rank] : { epoch: ckpt.state.epoch, position: 0 };
    ctx.log(`job ${jobId}: resumed from ${a.resume.checkpointKey} at step ${startStep}`);
  } else {
    await trainer.broadcastInitialState(0);
  }

  await ctx.control.appendEvent(jobId, { type: 'rank-started', rank, workerId: ctx.workerId, step: startStep });
  if (rank === 0) await ctx.control.updateJob(jobId, { totalSteps });
  let step = startStep;
  let epoch = cursor?.epoch ?? Math.floor(step / stepsPerEpoch);
  let lastCheckpointKey: string | undefined;
  const interval = spec.checkpoint?.intervalSteps ?? 0;

  const checkpoint = async (c: LoaderCursor) => {
    // Every rank's cursor goes into state.json; rank 0 writes the checkpoint.
    const cursors = comm ? ((await comm.allGather(c)) as LoaderCursor[]) : [c];
    if (rank === 0) {
      const key = await saveCheckpoint(ctx.store, checkpointBucket(spec), jobId, step, {
        weights: weightsToBytes(model),
        optimizer: trainer.optimizerBytes(),
        state: {
          epoch: c.epoch,
          step,
          cursors,
          seed: spec.seed,
          trainer: trainer.state(),
          membership: { runId: a.runId, epoch: a.membershipEpoch, worldSize, workers: a.peers.length },
        },
      });
      lastCheckpointKey = key;
      await pruneCheckpoints(ctx.store, checkpointBucket(spec), jobId, spec.checkpoint?.keep ?? 3);
      // The checkpoint event also records the job's lastCheckpoint (ControlPlane.appendEvent).
      await ctx.control.appendEvent(jobId, { type: 'checkpoint', rank, workerId: ctx.workerId, step, checkpointKey: key });
    }
    if (comm) await comm.barrier();
  };

  const evaluate = async () => {
    const ev = await trainer.evaluate(makeLoader('val').batches(0));
    ctx.log(`job ${jobId}: held-out at step ${step}: loss ${ev.loss.toFixed(4)}, top-1 ${(ev.accuracy * 100).toFixed(1)}%, top-5 ${(ev.top5 * 100).toFixed(1)}% (${ev.samples} images${valPipeline === 'tencrop' ? ', ten crops each' : ''})`);
    if (rank === 0) {
      await ctx.control.appendMetric(jobId, { kind: 'eval', step, epoch, loss: ev.loss, accuracy: ev.accuracy, lr: 0, imagesPerSec: 0, rank, ts: Date.now() });
    }
    return ev;
  };

  let stop: StopRequest = null;
  training: while (step < totalSteps) {
    const loader = makeLoader('train', cursor);
    cursor = undefined;
    for await (const batch of loader.batches(epoch)) {
      const t0 = performance.now();
      const r = await trainer.step(batch);
      // The step has disposed its tensors of the batch: the loader may refill its array.
      loader.recycle(batch);
      // [loss·n, correct, n, cancel, pause] summed over ranks: global metrics and the stop vote.
      const mine = ctx.stopRequested();
      const agg = Float32Array.of(r.loss * batch.size, r.accuracy * batch.size, batch.size, mine === 'cancel' ? 1 : 0, mine === 'pause' ? 1 : 0);
      if (comm) await comm.allReduce(agg, { op: 'sum' });
      step++;
      const seconds = (performance.now() - t0) / 1000;
      const loss = agg[0] / agg[2];
      const accuracy = agg[1] / agg[2];
      const imagesPerSec = agg[2] / seconds;
      // Rank 0's metric also updates the job record's progress fields (ControlPlane.appendMetric).
      if (rank === 0) {
        await ctx.control.appendMetric(jobId, { kind: 'train', step, epoch, loss, accuracy, lr: r.lr, imagesPerSec, rank, ts: Date.now() });
      }
      stop = agg[3] > 0 ? 'cancel' : agg[4] > 0 ? 'pause' : null;
      const atInterval = interval > 0 && step % interval === 0;
      if (atInterval || stop === 'pause') await checkpoint(batch.cursor);
      if (stop || step >= totalSteps) break training;
    }
    epoch++;
    // An epoch ended (the run goes on): checkpoint when no step interval is set, and the
    // periodic held-out evaluation, whose result also drives the plateau schedule.
    if (interval === 0) await checkpoint({ epoch, position: 0 });
    const every = spec.evaluation?.everyEpochs;
    if (every && epoch % every === 0 && manifest.splits.val) await evaluate();
  }

  if (stop === 'cancel') {
    return { status: 'cancelled', step, weightsHash: hashWeights(model) };
  }
  if (stop === 'pause') {
    return { status: 'paused', step, weightsHash: hashWeights(model), checkpointKey: lastCheckpointKey };
  }

  // Final checkpoint (so the run can be exported or fine-tuned), then held-out evaluation.
  if (interval === 0 || step % interval !== 0) await checkpoint({ epoch, position: 0 });
  let evalLoss: number | undefined;
  let evalAccuracy: number | undefined;
  if (spec.evaluation?.atEnd !== false && manifest.splits.val) {
    const ev = await evaluate();
    evalLoss = ev.loss;
    evalAccuracy = ev.accuracy;
  }
  return { status: 'completed', step, weightsHash: hashWeights(model), evalLoss, evalAccuracy, checkpointKey: lastCheckpointKey };
}

/** sha256 of the checkpoint encoding of every weight (trainable and not): equal hashes = identical replicas. */
export function hashWeights(model: ReturnType<typeof createModel>): string {
  return createHash('sha256').update(weightsToBytes(model)).digest('hex');
}
