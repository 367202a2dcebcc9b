import { randomBytes } from 'node:crypto';
import { parseJobSpec, type JobSpec } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset, type S3Config } from '@tensorfleet/data';
import { initBackend } from '@tensorfleet/models';
import { runTraining } from '../run/training-run';

export type CheckpointMode = 'none' | 'sync' | 'background';

export interface CheckpointBenchOptions {
  s3: S3Config;
  model?: string;
  inputSize?: number;
  batch?: number;
  /** Steps between checkpoints. */
  interval?: number;
  /** Checkpoints inside the timed window of each row. */
  checkpoints?: number;
  modes?: CheckpointMode[];
  /** Rounds of every mode, interleaved; a row reports its median round. */
  rounds?: number;
  backend?: string;
  log?: (msg: string) => void;
}

export interface CheckpointBenchRow {
  mode: CheckpointMode;
  model: string;
  inputSize: number;
  batch: number;
  backend: string;
  /** Timed steps (the first two, warm-up, are not timed). */
  steps: number;
  checkpoints: number;
  checkpointMB: number;
  stepSeconds: number;
  /** Extra seconds per checkpoint against mode 'none' (0 for 'none'). */
  extraPerCheckpoint: number;
  /** Step time against 'none' at this row's interval, %. */
  overheadPct: number;
  /** extraPerCheckpoint as a share of a minute of training: the overhead at one checkpoint per minute, %. */
  overheadPerMinutePct: number;
  /** Background rows: seconds from snapshot to commit, median. */
  uploadSeconds?: number;
  /** Background rows: checkpoints that had to wait for the previous upload. */
  waited?: number;
}

export interface CheckpointBenchResult {
  rows: CheckpointBenchRow[];
  note: string;
}

const WARMUP = 2;

/**
 * Step time of one training rank (runTraining, the worker's loop) with no checkpoints, with
 * synchronous ones and with background ones every `interval` steps, against a real S3. Step
 * times come from the run's own per-step metrics; the checkpoint after step s lands in step
 * s+1's time. The figure to compare with a checkpoint-per-minute target is the extra time per
 * checkpoint over 60 s: the interval here is shorter so that a row takes a minute or two.
 */
export async function runCheckpointBench(o: CheckpointBenchOptions): Promise<CheckpointBenchResult> {
  const model = o.model ?? 'resnet50';
  const inputSize = o.inputSize ?? 64;
  const batch = o.batch ?? 8;
  const interval = o.interval ?? 4;
  const count = o.checkpoints ?? 3;
  const modes = o.modes ?? ['none', 'sync', 'background'];
  const rounds = o.rounds ?? 1;
  const log = o.log ?? (() => undefined);
  const backend = await initBackend(o.backend ? { backend: o.backend as never } : {});
  // Checkpoints at interval, 2·interval, … count·interval inside the timed window, then a whole
  // interval more (a background upload ends inside it); the one at the last step is not timed.
  const steps = (count + 1) * interval;
  const store = new ObjectStore(o.s3);
  const bucket = `tf-bench-ckpt-${randomBytes(4).toString('hex')}`;
  const numClasses = 10;
  log(`writing a synthetic dataset of ${inputSize}px images to ${bucket}`);
  await writeSyntheticDataset(store, {
    bucket, prefix: 'ds', numClasses, imageSize: inputSize, trainPerClass: Math.ceil(((steps + 2) * batch) / numClasses), valPerClass: 0, samplesPerShard: 256, seed: 1, format: 'jpg',
  });
  const runs = new Map<CheckpointMode, { stepSeconds: number; uploads: number[]; waited: number; mb: number }[]>();
  try {
    for (let round = 0; round < rounds; round++) {
      for (const mode of modes) {
        const r = await timeRun(store, bucket, { model, inputSize, batch, interval: mode === 'none' ? 0 : interval, background: mode === 'background', steps });
        log(`  round ${round + 1} ${mode}: ${r.stepSeconds.toFixed(3)} s/step${r.uploads.length ? `, uploads ${r.uploads.map((u) => u.toFixed(1)).join(', ')} s` : ''}${r.waited ? `, ${r.waited} waited for the previous upload` : ''}`);
        runs.set(mode, [...(runs.get(mode) ?? []), r]);
      }
    }
  } finally {
    await store.removeAll(bucket).catch(() => undefined);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const timed = steps - WARMUP;
  const base = runs.get('none') ? median(runs.get('none')!.map((r) => r.stepSeconds)) : NaN;
  const rows = modes.map((mode): CheckpointBenchRow => {
    const rs = runs.get(mode)!;
    const stepSeconds = median(rs.map((r) => r.stepSeconds));
    const n = mode === 'none' ? 0 : count;
    const extra = n ? ((stepSeconds - base) * timed) / n : 0;
    const uploads = rs.flatMap((r) => r.uploads);
    return {
      mode, model, inputSize, batch, backend: backend.name, steps: timed, checkpoints: n, checkpointMB: Math.max(...rs.map((r) => r.mb)),
      stepSeconds, extraPerCheckpoint: extra, overheadPct: (stepSeconds / base - 1) * 100, overheadPerMinutePct: (extra / 60) * 100,
      ...(mode === 'background' ? { uploadSeconds: uploads.length ? median(uploads) : NaN, waited: rs.reduce((s, r) => s + r.waited, 0) } : {}),
    };
  });
  return { rows, note: `one rank; a checkpoint every ${interval} steps; ${timed} timed steps per row (after ${WARMUP} warm-up), median of ${rounds} round${rounds === 1 ? '' : 's'}` };
}

async function timeRun(store: ObjectStore, bucket: string, o: { model: string; inputSize: number; batch: number; interval: number; background: boolean; steps: number }) {
  const jobId = `bench-ckpt-${randomBytes(4).toString('hex')}`;
  const parsed = parseJobSpec({
    model: { name: o.model, inputSize: o.inputSize }, dataset: { bucket, prefix: 'ds' }, parallelism: { dataParallel: 1 }, batchSize: o.batch, steps: o.steps,
    optimizer: { type: 'sgd', lr: 0.01, momentum: 0.9, weightDecay: 1e-4 }, augmentation: 'none',
    checkpoint: { intervalSteps: o.interval, keep: 1, background: o.background }, evaluation: { atEnd: false }, seed: 1,
  });
  if (!parsed.spec) throw new Error(`checkpoint bench spec: ${JSON.stringify(parsed.errors)}`);
  const spec: JobSpec = parsed.spec;
  const ts: number[] = [];
  const uploads: number[] = [];
  let waited = 0;
  let mb = 0;
  await runTraining({
    store,
    joinWorld: async () => null,
    stopRequested: () => null,
    log: (m) => {
      const c = /committed \(([\d.]+) MB, ([\d.]+) s after its snapshot\)/.exec(m);
      if (c) {
        mb = Number(c[1]);
        uploads.push(Number(c[2]));
      }
      if (/still uploads: waited/.test(m)) waited++;
    },
    reporter: {
      started: async () => undefined,
      checkpointed: async () => undefined,
      metric: async (m) => void (m.kind === 'train' && ts.push(performance.now())),
      updateJob: async () => undefined,
    },
  }, { jobId, runId: `${jobId}.1`, membershipEpoch: 1, rank: 0, worldSize: 1, spec });
  // The last checkpoint (after the last step) is not in the timed window; its size is the same.
  if (!mb) {
    const listed = await store.list(bucket, `checkpoints/${jobId}/`);
    mb = listed.filter((x) => x.key.endsWith('.bin')).reduce((s, x) => s + x.size, 0) / 1e6;
  }
  await store.list(bucket, `checkpoints/${jobId}/`).then((xs) => Promise.all(xs.map((x) => store.remove(bucket, x.key))));
  return { stepSeconds: (ts[ts.length - 1] - ts[WARMUP - 1]) / 1000 / (ts.length - WARMUP), uploads, waited, mb };
}

export function formatCheckpointBench(r: CheckpointBenchResult): string {
  const head = ['mode', 'model', 'input', 'batch', 'backend', 'ckpt MB', 'checkpoints', 's/step', 'extra s/ckpt', 'overhead', 'at 1/min', 'upload s', 'waited'];
  const pct = (x: number) => `${x.toFixed(1)}%`;
  const body = r.rows.map((x) => [
    x.mode, x.model, `${x.inputSize}px`, String(x.batch), x.backend, x.checkpointMB.toFixed(0), String(x.checkpoints), x.stepSeconds.toFixed(3),
    x.mode === 'none' ? '-' : x.extraPerCheckpoint.toFixed(2), x.mode === 'none' ? '-' : pct(x.overheadPct), x.mode === 'none' ? '-' : pct(x.overheadPerMinutePct),
    x.uploadSeconds !== undefined ? x.uploadSeconds.toFixed(1) : '-', x.waited !== undefined ? String(x.waited) : '-',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i])).join('  ');
  return [line(head), ...body.map(line), '', r.note].join('\n');
}
