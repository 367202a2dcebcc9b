import { tf, initBackend, loadableBackends, BackendInfo, BackendName } from '../backend';
import { dnnlAddon } from '../backend/onednn-addon';
import { createModel } from '../zoo';
import { pytorchAvailable, runPytorchStep } from './pytorch-step';

export interface TrainBenchModel {
  name: string;
  inputSize: number;
  batchSize: number;
  /**
   * Images per forward/backward pass; gradients of batchSize / microBatch passes are summed
   * before one update (batch-norm statistics then cover a micro-batch). Default batchSize.
   * tfjs keeps every forward intermediate until the backward pass ends, so ResNet-50 at
   * 224×224 needs ~0.75 GiB of wasm heap per image: batch 8 already exceeds wasm32's 4 GiB.
   */
  microBatch?: number;
}

export interface TrainBenchOptions {
  /** Default DEFAULT_TRAIN_BENCH: ResNet-20 32×32 b64; ResNet-18, ResNet-50, AlexNet 224×224 b16. */
  models?: TrainBenchModel[];
  /** Timed training steps per model. Default 3. */
  steps?: number;
  /** Untimed steps first (operator caches, JIT). Default 1. */
  warmup?: number;
  /** Also time forward passes alone, to split a step into forward and backward+update. Default true. */
  split?: boolean;
  /** Profile one step per kernel (tf.profile). Default false. */
  profile?: boolean;
  /** One backend to benchmark (instead of `backends`). */
  backend?: BackendName;
  /**
   * Backends to benchmark, one after another for each model (then PyTorch), so that rows to
   * compare run minutes apart at most. Default: every one that loads here of tensorflow,
   * onednn, wasm (FLEET_BACKEND, when set, alone).
   */
  backends?: BackendName[];
  /** PyTorch's figure for the same step after each model's backends (FLEET_PYTHON with torch). Default: when importable. */
  pytorch?: boolean;
  /** How many times each model's sequence (every backend, then PyTorch) runs. Default 1. */
  rounds?: number;
  /** wasm only: 'minimal' benchmarks the stock kernels plus the missing filter gradient. Default 'all'. */
  kernels?: 'all' | 'minimal';
  numClasses?: number;
  /** Called with each row as soon as it is measured. */
  onRow?: (row: TrainBenchRow) => void;
}

export interface KernelTime {
  name: string;
  ms: number;
  calls: number;
}

export interface TrainBenchRow {
  model: string;
  /** Which wasm kernels were registered ('all' unless the baseline was asked for). */
  kernelSet: 'all' | 'minimal';
  /** 1-based: rows of one round ran back to back (compare within a round; absolute times drift). */
  round: number;
  inputSize: number;
  batch: number;
  microBatch: number;
  /** A BackendName, or 'pytorch' for PyTorch's figure. */
  backend: string;
  device: string;
  threads: number;
  /** What provides the backend (npm package, oneDNN version, PyTorch version). */
  package: string;
  imagesPerSec: number;
  msPerStep: number;
  /**
   * Process CPU time per step. On a shared machine wall time includes waiting for a core;
   * batch · 1000 / cpuMsPerStep is the rate the step would run at on an idle core.
   */
  cpuMsPerStep: number;
  forwardMs?: number;
  /** Backward pass and SGD-momentum update: msPerStep − forwardMs. */
  backwardMs?: number;
  /**
   * Peak memory of a step: tfjs's peak tensor bytes during the warm-up step (weights, momentum,
   * activations kept for the backward pass, gradients) plus the oneDNN addon's scratch; for
   * PyTorch, the peak RSS above the process's size before the model was built.
   */
  peakBytes?: number;
  /** imagesPerSec / PyTorch's imagesPerSec in the same round. */
  vsPytorch?: number;
  /** Why there is no PyTorch figure in this round (no such model in the script, a crash). */
  pytorchError?: string;
  kernels?: KernelTime[];
}

export const DEFAULT_TRAIN_BENCH: readonly TrainBenchModel[] = [
  { name: 'resnet20', inputSize: 32, batchSize: 64 },
  { name: 'resnet18', inputSize: 224, batchSize: 16 },
  { name: 'alexnet', inputSize: 224, batchSize: 16 },
  // 4 micro-batches of 4: ~2 GiB of tensors at the peak (tfjs keeps a step's activations), within wasm32's 4 GiB heap.
  { name: 'resnet50', inputSize: 224, batchSize: 16, microBatch: 4 },
];

const DEFAULTS = { steps: 3, warmup: 1, split: true, profile: false, numClasses: 1000, rounds: 1 };

/**
 * Images per second of a full training step (forward, softmax cross-entropy, backward,
 * SGD with momentum 0.9) on random data, per model and batch size, on this process's backend.
 */
export async function runTrainBench(opts: TrainBenchOptions = {}): Promise<TrainBenchRow[]> {
  const o = { ...DEFAULTS, ...opts };
  for (const key of ['steps', 'warmup', 'rounds'] as const) {
    const min = key === 'warmup' ? 0 : 1;
    if (!Number.isInteger(o[key]) || o[key] < min) throw new RangeError(`runTrainBench: ${key} must be an integer ≥ ${min}, got ${o[key]}`);
  }
  const backends = o.backend ? [o.backend] : o.backends ?? defaultBackends();
  if (backends.length === 0) throw new RangeError('runTrainBench: backends is empty');
  // onednn registers every wasm kernel (it shares wasm's instance), so the stock baseline cannot follow it.
  if (o.kernels === 'minimal' && backends.some((b) => b !== 'wasm')) {
    throw new RangeError(`runTrainBench: kernels 'minimal' is the stock wasm baseline; benchmark it with backends ['wasm'] alone, not ${backends.join(', ')}`);
  }
  const pytorch = o.pytorch ?? pytorchAvailable();
  const rows: TrainBenchRow[] = [];
  const emit = (row: TrainBenchRow) => {
    rows.push(row);
    o.onRow?.(row);
  };
  for (const m of o.models ?? DEFAULT_TRAIN_BENCH) {
    for (let round = 1; round <= o.rounds; round++) {
      const measured: TrainBenchRow[] = [];
      for (const name of backends) {
        const info = await initBackend({ backend: name, fleetKernels: o.kernels === 'minimal' ? 'minimal' : true });
        measured.push(await benchOne(m, info, o, round));
      }
      const reference = pytorch ? pytorchRow(m, o, round, measured[0].threads) : null;
      for (const row of measured) {
        if (reference instanceof Error) row.pytorchError = reference.message;
        else if (reference) row.vsPytorch = Math.round((row.imagesPerSec / reference.imagesPerSec) * 100) / 100;
        emit(row);
      }
      if (reference && !(reference instanceof Error)) emit(reference);
    }
  }
  return rows;
}

/** FLEET_BACKEND alone when set; else every backend that loads here except the slow `cpu` reference. */
function defaultBackends(): BackendName[] {
  const env = process.env.FLEET_BACKEND;
  if (env && env !== 'auto') return [env as BackendName];
  return loadableBackends().filter((b) => b !== 'cpu');
}

/** PyTorch's figure for the same step, on as many threads as the backends used. */
function pytorchRow(m: TrainBenchModel, o: typeof DEFAULTS & TrainBenchOptions, nth: number, threads: number): TrainBenchRow | Error {
  const p = runPytorchStep(m.name, m.inputSize, m.batchSize, o.steps, Math.max(1, o.warmup), threads);
  if (p instanceof Error) return p;
  return {
    model: m.name, kernelSet: 'all', round: nth, inputSize: m.inputSize, batch: m.batchSize, microBatch: m.batchSize,
    backend: 'pytorch', device: 'cpu', threads, package: `torch ${p.version}`,
    imagesPerSec: round(p.imagesPerSec), msPerStep: round(p.msPerStep), cpuMsPerStep: round(p.cpuMsPerStep), peakBytes: p.peakBytes,
  };
}

async function benchOne(m: TrainBenchModel, info: BackendInfo, o: typeof DEFAULTS & TrainBenchOptions, nth: number): Promise<TrainBenchRow> {
  const numClasses = m.name.startsWith('resnet') && m.inputSize <= 64 ? 10 : o.numClasses;
  const model = createModel(m.name, { inputSize: m.inputSize, numClasses, seed: 1 });
  const micro = m.microBatch ?? m.batchSize;
  if (!Number.isInteger(micro) || micro < 1 || m.batchSize % micro !== 0) {
    throw new RangeError(`runTrainBench ${m.name}: microBatch ${micro} must divide batchSize ${m.batchSize}`);
  }
  const x = tf.randomNormal([micro, m.inputSize, m.inputSize, 3]);
  const y = tf.oneHot(tf.randomUniform([micro], 0, numClasses, 'int32'), numClasses);
  const optimizer = tf.train.momentum(0.01, 0.9);
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const lossOf = () => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar;
  const step = () => {
    if (micro === m.batchSize) {
      const loss = optimizer.minimize(lossOf, true, vars)!;
      loss.dataSync();
      loss.dispose();
      return;
    }
    let sum: tf.NamedTensorMap | null = null;
    for (let i = 0; i < m.batchSize / micro; i++) {
      const { value, grads } = tf.variableGrads(lossOf, vars);
      value.dataSync();
      value.dispose();
      const prev: tf.NamedTensorMap | null = sum;
      sum = prev ? Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, tf.add(prev[k], g)])) : grads;
      if (prev) tf.dispose([...Object.values(prev), ...Object.values(grads)]);
    }
    const scale = micro / m.batchSize;
    const mean = tf.tidy(() => Object.fromEntries(Object.entries(sum!).map(([k, g]) => [k, tf.mul(g, scale)])));
    tf.dispose(Object.values(sum!));
    optimizer.applyGradients(Object.entries(mean).map(([name, tensor]) => ({ name, tensor })));
    tf.dispose(Object.values(mean));
  };
  const forward = () => {
    for (let i = 0; i < m.batchSize / micro; i++) {
      const out = tf.tidy(() => lossOf());
      out.dataSync();
      out.dispose();
    }
  };
  try {
    // The first warm-up step under tf.profile, which tracks the peak of live tensor bytes.
    let peakBytes: number | undefined;
    for (let i = 0; i < o.warmup; i++) {
      if (i === 0) peakBytes = (await tf.profile(step)).peakBytes + (info.name === 'onednn' ? dnnlAddon()?.scratchBytes() ?? 0 : 0);
      else step();
    }
    const { wallMs: msPerStep, cpuMs } = timeMs(step, o.steps);
    const row: TrainBenchRow = {
      model: m.name,
      kernelSet: o.kernels ?? 'all',
      round: nth,
      inputSize: m.inputSize,
      batch: m.batchSize,
      microBatch: micro,
      backend: info.name,
      device: info.device,
      threads: info.threads,
      package: info.package,
      imagesPerSec: round((m.batchSize * 1000) / msPerStep),
      msPerStep: round(msPerStep),
      cpuMsPerStep: round(cpuMs),
      ...(peakBytes !== undefined ? { peakBytes } : {}),
    };
    if (o.split) {
      const forwardMs = timeMs(forward, o.steps).wallMs;
      row.forwardMs = round(forwardMs);
      row.backwardMs = round(Math.max(0, msPerStep - forwardMs));
    }
    if (o.profile) row.kernels = await profileStep(step);
    return row;
  } finally {
    tf.dispose([x, y]);
    optimizer.dispose();
    model.dispose();
  }
}

/**
 * Per-kernel time of one step. Kernel times are process CPU time (the backend's wall-clock
 * timer is swapped out while profiling) so that a busy shared machine doesn't inflate them.
 */
async function profileStep(step: () => void): Promise<KernelTime[]> {
  const backend = tf.backend() as unknown as { time(f: () => void): Promise<{ kernelMs: number }> };
  const wallTimer = backend.time;
  backend.time = async (f) => {
    const c0 = process.cpuUsage();
    f();
    const c = process.cpuUsage(c0);
    return { kernelMs: (c.user + c.system) / 1000 };
  };
  let info: Awaited<ReturnType<typeof tf.profile>>;
  try {
    info = await tf.profile(step);
  } finally {
    backend.time = wallTimer;
  }
  const byName = new Map<string, KernelTime>();
  for (const k of info.kernels) {
    // Ops that wrap kernels (e.g. fusedConv2d__op) would count their kernels twice.
    if (k.name.endsWith('__op')) continue;
    const t = byName.get(k.name) ?? { name: k.name, ms: 0, calls: 0 };
    t.ms += typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    t.calls++;
    byName.set(k.name, t);
  }
  return [...byName.values()].map((t) => ({ ...t, ms: round(t.ms) })).sort((a, b) => b.ms - a.ms);
}

function timeMs(fn: () => void, n: number): { wallMs: number; cpuMs: number } {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6 / n;
  const cpu = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (cpu.user + cpu.system) / 1000 / n };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}

/** Fixed-width table of rows (and the top kernels of profiled rows). */
export function formatTrainBench(rows: TrainBenchRow[]): string {
  const head = ['model', 'input', 'batch', 'backend', 'img/s', 'vs pytorch', 'ms/step', 'cpu ms/step', 'fwd ms', 'bwd+upd ms', 'peak MiB'];
  const body = rows.map((r) => [
    r.model,
    `${r.inputSize}`,
    r.microBatch === r.batch ? `${r.batch}` : `${r.batch}=${r.batch / r.microBatch}×${r.microBatch}`,
    `${r.backend === 'pytorch' ? r.package : r.backend}/${r.device}×${r.threads}${r.kernelSet === 'minimal' ? ' (stock)' : ''}`,
    r.imagesPerSec.toFixed(1),
    r.vsPytorch !== undefined ? `${r.vsPytorch.toFixed(2)}×` : r.backend === 'pytorch' ? '1.00×' : '',
    r.msPerStep.toFixed(0),
    r.cpuMsPerStep.toFixed(0),
    r.forwardMs?.toFixed(0) ?? '',
    r.backwardMs?.toFixed(0) ?? '',
    r.peakBytes !== undefined ? (r.peakBytes / 2 ** 20).toFixed(0) : '',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [line(head), ...body.map(line)];
  const missing = [...new Set(rows.map((r) => r.pytorchError).filter(Boolean))];
  if (missing.length) out.push('', ...missing.map((e) => `no PyTorch figure: ${e}`));
  for (const r of rows) {
    if (!r.kernels) continue;
    const total = r.kernels.reduce((a, k) => a + k.ms, 0);
    out.push('', `${r.model} b${r.batch}: kernel CPU time per step ${total.toFixed(0)} ms`);
    for (const k of r.kernels.slice(0, 15)) {
      out.push(`  ${k.name.padEnd(26)} ${k.ms.toFixed(1).padStart(8)} ms ${((100 * k.ms) / total).toFixed(1).padStart(5)}%  ${k.calls} calls`);
    }
  }
  return out.join('\n');
}

if (require.main === module) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./cli') as typeof import('./cli')).trainBenchMain(process.argv.slice(2)).catch((err: Error) => {
    process.stderr.write(`${err.message}\n`);
    process.exitCode = 1;
  });
}
