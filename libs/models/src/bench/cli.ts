import { DEFAULT_TRAIN_BENCH, TrainBenchModel, TrainBenchOptions, formatTrainBench, runTrainBench } from './train-bench';
import { BACKENDS, BackendName } from '../backend';

const USAGE = `usage: train-bench [--json] [--profile] [--steps N] [--warmup N] [--rounds N] [--backends onednn,wasm,...] [--no-pytorch] [--kernels all|minimal] [--model NAME@SIZE:BATCH[/MICRO] ...]
  default models: ${DEFAULT_TRAIN_BENCH.map((m) => `${m.name}@${m.inputSize}:${m.batchSize}${m.microBatch ? `/${m.microBatch}` : ''}`).join(' ')}`;

/** Parses train-bench command-line arguments (also what `fleet bench train` accepts). */
export function parseTrainBenchArgs(argv: string[]): TrainBenchOptions & { json: boolean } {
  const out: TrainBenchOptions & { json: boolean } = { json: false };
  const models: TrainBenchModel[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === '--json') out.json = true;
    else if (a === '--profile') out.profile = true;
    else if (a === '--steps') out.steps = Number(next());
    else if (a === '--warmup') out.warmup = Number(next());
    else if (a === '--rounds') out.rounds = Number(next());
    else if (a === '--no-pytorch') out.pytorch = false;
    else if (a === '--backends') out.backends = parseBackends(next());
    else if (a === '--kernels') {
      const k = next();
      if (k !== 'all' && k !== 'minimal') throw new Error(`--kernels ${k}: expected all or minimal\n${USAGE}`);
      out.kernels = k;
    }
    else if (a === '--model') {
      const spec = next();
      const m = /^([\w-]+)@(\d+):(\d+)(?:\/(\d+))?$/.exec(spec);
      if (!m) throw new Error(`--model ${spec}: expected NAME@SIZE:BATCH[/MICRO], e.g. resnet50@224:16/2\n${USAGE}`);
      models.push({ name: m[1], inputSize: Number(m[2]), batchSize: Number(m[3]), ...(m[4] ? { microBatch: Number(m[4]) } : {}) });
    } else throw new Error(`unknown argument ${a}\n${USAGE}`);
  }
  if (models.length) out.models = models;
  return out;
}

/** A comma-separated list of backend names, each checked. */
export function parseBackends(list: string): BackendName[] {
  const names = list.split(',').filter(Boolean);
  for (const n of names) {
    if (!(BACKENDS as readonly string[]).includes(n)) throw new Error(`--backends: ${n} is not a backend; use ${BACKENDS.join(', ')}\n${USAGE}`);
  }
  return names as BackendName[];
}

export async function trainBenchMain(argv: string[]): Promise<void> {
  const { json, ...opts } = parseTrainBenchArgs(argv);
  const rows = await runTrainBench({
    ...opts,
    onRow: json ? undefined : (r) => process.stderr.write(`${r.model} b${r.batch} ${r.backend}: ${r.imagesPerSec} img/s\n`),
  });
  process.stdout.write(json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatTrainBench(rows)}\n`);
}
