import { spawn, type ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { PeerAddress } from '@tensorfleet/collective';
import { describeModel, initBackend, modelSections } from '@tensorfleet/models';
import { pipelineStages, planLayout } from '../parallel/layout';
import { ParallelPlan, type PipelineSchedule, type StageBalance } from '../parallel/plan';
import { profileSections } from '../parallel/profile';
import { idealEfficiency } from '../parallel/schedule';

/** What one bench process runs (pipeline-bench-rank.ts). */
export interface BenchRankConfig {
  plan: 'single' | 'pipeline' | 'columns';
  model: string;
  inputSize: number;
  numClasses: number;
  batch: number;
  microBatches: number;
  schedule?: PipelineSchedule;
  stageSections?: string[][];
  rank: number;
  worldSize: number;
  peers: PeerAddress[];
  runId: string;
  warmup: number;
  steps: number;
}

export interface BenchRankResult {
  stepMs: number;
  waitMs: number;
  /** Forward and backward, without the waits. */
  computeMs: number;
  /** The SGD update of the rank's weights (after the micro-batches; no all-reduce with one replica). */
  updateMs: number;
  sentBytes: number;
  /** Peak of tensor memory during a step (weights, optimizer, activations, gradients), bytes. */
  peakBytes: number;
  /** Tensor memory the trainer allocated before its first step: its weights and velocity buffers. */
  weightBytes: number;
}

export interface PipelineBenchOptions {
  /** ResNet of the pipeline rows. Default resnet20 at 32 pixels, batch 64 (He et al.'s CIFAR setting). */
  model?: string;
  inputSize?: number;
  batch?: number;
  stages?: number;
  microBatches?: number[];
  schedules?: PipelineSchedule[];
  balances?: StageBalance[];
  /** Also the AlexNet column split against one process (alexnet_paper). Default true. */
  columns?: boolean;
  columnsInputSize?: number;
  columnsBatch?: number;
  columnsMicroBatches?: number[];
  steps?: number;
  warmup?: number;
  /**
   * Rounds per micro-batch count: each round measures the single-process baseline and then
   * every plan row again, and a row reports its median round (by ofIdeal). Load from other
   * processes drifts within minutes on a shared machine; a ratio taken within one round is
   * robust to it. Default 3.
   */
  rounds?: number;
  numClasses?: number;
  onRow?: (row: PipelineBenchRow) => void;
}

export interface PipelineBenchRow {
  plan: 'single' | 'pipeline' | 'columns';
  model: string;
  inputSize: number;
  batch: number;
  workers: number;
  microBatches: number;
  schedule?: PipelineSchedule;
  balance?: StageBalance;
  /** Stage sections (first..last) per rank. */
  stages?: string[];
  /** Multiply-adds per image of each rank's part (from the layer configs): how even the cut is. */
  macsPerImage?: number[];
  imagesPerSec: number;
  stepMs: number;
  /**
   * imagesPerSec / (workers × single-process images/s), the single process measured while as
   * many copies of it run at once as the plan has workers (each core as busy as under the plan).
   */
  efficiency?: number;
  /** Single-process rows: step time with the other cores idle, and how much slower it is with them busy (loaded ÷ alone). */
  aloneStepMs?: number;
  interference?: number;
  /** Plan rows: ofIdeal of every round (the row is the median one). */
  roundsOfIdeal?: number[];
  /** GPipe's m / (m + S − 1) (pipelines); 1 for the columns, which have no bubble. */
  ideal?: number;
  ofIdeal?: number;
  /** Share of each rank's step spent waiting for its neighbours (the measured bubble + transfers). */
  bubble?: number[];
  computeMs: number[];
  updateMs: number[];
  waitMs: number[];
  sentBytesPerStep: number[];
  peakBytes: number[];
  /** Weights + velocity each rank allocated, and that against its part's size in the layout (1 = exactly its part). */
  weightBytes: number[];
  weightOfShare: number[];
}

export interface PipelineBenchResult {
  rows: PipelineBenchRow[];
  backend: string;
  cores: number;
  note: string;
}

const RANK_MAIN = path.join(__dirname, 'pipeline-bench-rank.js');

/** Bench processes, started once and reused by every row. */
class RankPool {
  private readonly procs: { child: ChildProcess; address: PeerAddress; lines: AsyncIterator<string> }[] = [];
  private runs = 0;

  static async start(n: number): Promise<RankPool> {
    const pool = new RankPool();
    for (let i = 0; i < n; i++) {
      const child = spawn(process.execPath, [RANK_MAIN], { stdio: ['pipe', 'pipe', 'inherit'] });
      const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const first = await nextJson(lines, child);
      pool.procs.push({ child, address: first.address, lines });
    }
    return pool;
  }

  /** Runs `configs` (one per rank) on the first ranks of the pool, all at once. */
  async run(configs: Omit<BenchRankConfig, 'rank' | 'worldSize' | 'peers' | 'runId'>[]): Promise<BenchRankResult[]> {
    const n = configs.length;
    const peers = this.procs.slice(0, n).map((p) => p.address);
    const runId = `bench-${process.pid}-${++this.runs}`;
    return Promise.all(configs.map(async (c, rank) => {
      const p = this.procs[rank];
      p.child.stdin!.write(JSON.stringify({ ...c, rank, worldSize: n, peers, runId }) + '\n');
      const reply = await nextJson(p.lines, p.child);
      if (reply.error) throw new Error(`bench rank ${rank}: ${reply.error}`);
      return reply.result as BenchRankResult;
    }));
  }

  async close(): Promise<void> {
    await Promise.all(this.procs.map((p) => new Promise<void>((resolve) => {
      p.child.once('exit', () => resolve());
      p.child.stdin!.write(JSON.stringify({ exit: true }) + '\n');
      setTimeout(() => p.child.kill('SIGKILL'), 5000).unref();
    })));
  }
}

async function nextJson(lines: AsyncIterator<string>, child: ChildProcess): Promise<any> {
  for (;;) {
    const r = await lines.next();
    if (r.done) throw new Error(`a bench process exited (${child.exitCode ?? child.signalCode})`);
    try {
      return JSON.parse(r.value);
    } catch {
      // tfjs' banner and other output
    }
  }
}

/**
 * Pipeline and column efficiency on this machine, each plan against one process training
 * the same model on the same batch in the same micro-batches (so per-micro-batch costs are on
 * both sides): achieved efficiency = T₁ / (S · T_S), against GPipe's ideal m / (m + S − 1).
 * Stage processes run side by side, one per core, reused across rows.
 */
export async function runPipelineBench(opts: PipelineBenchOptions = {}): Promise<PipelineBenchResult> {
  const o = {
    model: 'resnet20', inputSize: 32, batch: 64, stages: 2, microBatches: [2, 4, 8], schedules: ['gpipe', '1f1b'] as PipelineSchedule[],
    balances: ['macs', 'time'] as StageBalance[], columns: true, columnsInputSize: 227, columnsBatch: 16, columnsMicroBatches: [1, 2],
    steps: 3, warmup: 1, rounds: 3, numClasses: 10, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
  } as Required<PipelineBenchOptions>;
  const backend = await initBackend();
  const pool = await RankPool.start(Math.max(o.stages, 2));
  const rows: PipelineBenchRow[] = [];
  const emit = (r: PipelineBenchRow) => {
    rows.push(r);
    o.onRow?.(r);
  };
  const common = { numClasses: o.numClasses, warmup: o.warmup, steps: o.steps };
  try {
    // stage costs for balance 'time': measured once here, on this backend, at each micro-batch size
    const modelOpts = { inputSize: o.inputSize, numClasses: o.numClasses };
    const sections = modelSections(o.model, modelOpts);
    for (const m of o.microBatches) {
      if (o.batch % m) continue;
      const times = o.balances.includes('time') ? profileSections(o.model, modelOpts, sections.map((s) => s.name), o.batch / m) : null;
      const cases: BenchCase[] = [];
      for (const balance of o.balances) {
        const plan = new ParallelPlan({ dataParallel: 1, modelParallel: { kind: 'pipeline', stages: o.stages, microBatches: m, balance } });
        const stageSections = pipelineStages(sections, plan, balance === 'time' ? times! : undefined);
        const parts = partsOf(planLayout(o.model, modelOpts, plan, 0.9, stageSections));
        for (const schedule of o.schedules) {
          if (schedule === '1f1b' && m < o.stages) continue;
          cases.push({
            configs: Array.from({ length: o.stages }, () => ({ ...common, plan: 'pipeline' as const, model: o.model, inputSize: o.inputSize, batch: o.batch, microBatches: m, schedule, stageSections })),
            row: (rs, base) => row('pipeline', o.model, o.inputSize, o.batch, m, rs, base, idealEfficiency(o.stages, m), schedule, balance, stageSections.map(sectionsOf), parts),
          });
        }
      }
      await inRounds(pool, o.rounds, { ...common, plan: 'single', model: o.model, inputSize: o.inputSize, batch: o.batch, microBatches: m }, o.stages, [sectionsOf(sections.map((s) => s.name))], describeBytes(o.model, modelOpts), cases, emit);
    }
    if (o.columns) {
      const cOpts = { inputSize: o.columnsInputSize, numClasses: o.numClasses };
      const plan = new ParallelPlan({ dataParallel: 1, modelParallel: { kind: 'alexnet-columns', stages: 2, microBatches: 1 } });
      const parts = partsOf(planLayout('alexnet_paper', cOpts, plan, 0.9));
      for (const m of o.columnsMicroBatches) {
        if (o.columnsBatch % m) continue;
        const cfg = { ...common, model: 'alexnet_paper', inputSize: o.columnsInputSize, batch: o.columnsBatch, microBatches: m };
        await inRounds(pool, o.rounds, { ...cfg, plan: 'single' }, 2, ['whole'], describeBytes('alexnet_paper', cOpts), [{
          configs: [{ ...cfg, plan: 'columns' }, { ...cfg, plan: 'columns' }],
          row: (rs, base) => row('columns', 'alexnet_paper', o.columnsInputSize, o.columnsBatch, m, rs, base, 1, undefined, undefined, ['column 0', 'column 1'], parts),
        }], emit);
      }
    }
  } finally {
    await pool.close();
  }
  return {
    rows, backend: `${backend.name} (${backend.device})`, cores: os.cpus().length,
    note: 'efficiency = images/s ÷ (workers × one process\'s images/s) with the same micro-batches, one process measured while as many copies run at once (step ms of a "1 worker" row; "alone ms" with the other cores idle, ×: how much the busy cores slow it); ofIdeal = efficiency ÷ m/(m+S−1) (1 for the columns). Each micro-batch count is measured in rounds (baseline, then every row); a row is its median round, "rounds %" the ofIdeal of every round. One process per core; absolute times drift on a shared machine: compare rows of one run.',
  };
}

type RankConfig = Omit<BenchRankConfig, 'rank' | 'worldSize' | 'peers' | 'runId'>;

/** One plan row: the processes it runs and how their results become a row against a baseline. */
interface BenchCase {
  configs: RankConfig[];
  row(rs: BenchRankResult[], baseImagesPerSec: number): PipelineBenchRow;
}

/**
 * The baseline, then every case, `rounds` times over; each case's row is its median round by
 * ofIdeal (its efficiency against that round's own baseline), with every round's ofIdeal.
 */
async function inRounds(
  pool: RankPool, rounds: number, single: RankConfig, copies: number, stages: string[], bytes: number, cases: BenchCase[], emit: (r: PipelineBenchRow) => void,
): Promise<void> {
  const alone = (await pool.run([single]))[0];
  const baselines: PipelineBenchRow[] = [];
  const results: PipelineBenchRow[][] = cases.map(() => []);
  for (let k = 0; k < Math.max(1, rounds); k++) {
    const base = await baseline(pool, single, copies, stages, bytes, alone);
    baselines.push(base);
    for (const [i, c] of cases.entries()) results[i].push(c.row(await pool.run(c.configs), base.imagesPerSec));
  }
  emit(median(baselines, (r) => r.imagesPerSec));
  for (const rs of results) emit({ ...median(rs, (r) => r.ofIdeal!), roundsOfIdeal: rs.map((r) => r.ofIdeal!) });
}

function median<T>(xs: T[], by: (x: T) => number): T {
  return [...xs].sort((a, b) => by(a) - by(b))[Math.floor((xs.length - 1) / 2)];
}

/**
 * The single-process step, alone and then as `copies` processes at once (what each core does
 * under a plan of that many workers: on this VM two busy cores slow each other by 10-40%).
 * Returns the loaded images/s per process, the plans' reference.
 */
async function baseline(pool: RankPool, cfg: RankConfig, copies: number, stages: string[], bytes: number, alone: BenchRankResult): Promise<PipelineBenchRow> {
  const loaded = await pool.run(Array.from({ length: copies }, () => cfg));
  const stepMs = loaded.reduce((a, r) => a + r.stepMs, 0) / loaded.length;
  const base = cfg.batch / (stepMs / 1000);
  const r = row('single', cfg.model, cfg.inputSize, cfg.batch, cfg.microBatches, [{ ...alone, stepMs }], base, undefined, undefined, undefined, stages, { share: [bytes] });
  return { ...r, aloneStepMs: alone.stepMs, interference: stepMs / alone.stepMs };
}

/** Weights + velocity of the whole model (the single process's share is all of it). */
function describeBytes(model: string, opts: { inputSize: number; numClasses: number }): number {
  const d = describeModel(model, opts);
  return 4 * (d.params + d.state) + 4 * d.params;
}

function sectionsOf(names: string[]): string {
  return names.length === 1 ? names[0] : `${names[0]}..${names[names.length - 1]}`;
}

/** Per rank: the bytes of weights + velocity it should hold, and its part's multiply-adds per image. */
interface RankParts { share: number[]; macs?: number[] }

function partsOf(layout: { weightBytes: number; optimizerBytes: number; macs: number }[]): RankParts {
  return { share: layout.map((l) => l.weightBytes + l.optimizerBytes), macs: layout.map((l) => l.macs) };
}

function row(
  plan: PipelineBenchRow['plan'], model: string, inputSize: number, batch: number, microBatches: number, rs: BenchRankResult[], baseImagesPerSec: number,
  ideal: number | undefined, schedule: PipelineSchedule | undefined, balance: StageBalance | undefined, stages: string[], parts: RankParts,
): PipelineBenchRow {
  const { share, macs } = parts;
  const stepMs = Math.max(...rs.map((r) => r.stepMs));
  const imagesPerSec = batch / (stepMs / 1000);
  const workers = rs.length;
  const efficiency = plan === 'single' ? undefined : imagesPerSec / (workers * baseImagesPerSec);
  return {
    plan, model, inputSize, batch, workers, microBatches, ...(schedule ? { schedule } : {}), ...(balance ? { balance } : {}), stages,
    imagesPerSec, stepMs,
    ...(efficiency !== undefined ? { efficiency, ideal, ofIdeal: efficiency / ideal! } : {}),
    ...(plan !== 'single' ? { bubble: rs.map((r) => r.waitMs / r.stepMs) } : {}),
    computeMs: rs.map((r) => r.computeMs), updateMs: rs.map((r) => r.updateMs), waitMs: rs.map((r) => r.waitMs), sentBytesPerStep: rs.map((r) => r.sentBytes),
    peakBytes: rs.map((r) => r.peakBytes), weightBytes: rs.map((r) => r.weightBytes), weightOfShare: rs.map((r, i) => r.weightBytes / share[i]),
    ...(macs ? { macsPerImage: macs } : {}),
  };
}

/** The bench as a table. */
export function formatPipelineBench(r: PipelineBenchResult): string {
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const pct = (x?: number) => (x === undefined ? '' : `${(x * 100).toFixed(1)}%`);
  const head = ['plan', 'model', 'm', 'schedule', 'balance', 'img/s', 'step ms', 'alone ms', 'efficiency', 'ideal', 'of ideal', 'rounds %', 'wait/step per rank', 'compute ms per rank', 'update ms', 'sent MB/step', 'peak MB', 'weights MB (of share)', 'M MACs/img per rank', 'stages'];
  const lines = r.rows.map((x) => [
    x.plan === 'single' ? '1 worker' : `${x.plan} ×${x.workers}`, `${x.model} ${x.inputSize}px b${x.batch}`, String(x.microBatches), x.schedule ?? '', x.balance ?? '',
    x.imagesPerSec.toFixed(1), x.stepMs.toFixed(0), x.aloneStepMs === undefined ? '' : `${x.aloneStepMs.toFixed(0)} (×${x.interference!.toFixed(2)})`, pct(x.efficiency), pct(x.ideal), pct(x.ofIdeal),
    (x.roundsOfIdeal ?? []).map((v) => (v * 100).toFixed(0)).join(' '),
    (x.bubble ?? []).map(pct).join(' / '), x.computeMs.map((v) => v.toFixed(0)).join(' / '), x.updateMs.map((v) => v.toFixed(0)).join(' / '), x.sentBytesPerStep.map(mb).join(' / '),
    x.peakBytes.map(mb).join(' / '), x.weightBytes.map((b, i) => `${mb(b)} (${(x.weightOfShare[i] * 100).toFixed(0)}%)`).join(' / '),
    (x.macsPerImage ?? []).map((v) => (v / 1e6).toFixed(1)).join(' / '), (x.stages ?? []).join(' | '),
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i])).join('  ');
  return [`backend ${r.backend}, ${r.cores} cores`, fmt(head), ...lines.map(fmt), '', r.note].join('\n');
}
