import { TrainingError } from '../errors';

export type LrScheduleType = 'constant' | 'step' | 'multistep' | 'cosine' | 'plateau';

/** What a job spec says about the learning rate (`optimizer.lr` + `lrSchedule`). */
export interface LrScheduleSpec {
  type: LrScheduleType;
  /** Base learning rate, for `referenceBatch` samples when `scaleWithWorldSize` is on. */
  lr: number;
  /** Linear warmup length in steps (Goyal et al. 2017). Default 0. */
  warmupSteps?: number;
  /**
   * Warmup starts at lr·warmupStartFactor. Default: 1/k when the linear scaling rule
   * multiplies the lr by k > 1 (Goyal: start from the small-batch lr η, reach kη),
   * otherwise 0 (as timm).
   */
  warmupStartFactor?: number;
  /** `step`: decay by gamma every `stepSize` epochs. */
  stepSize?: number;
  /** `multistep`, or `step` without stepSize: epochs at which the lr is multiplied by gamma. */
  milestones?: number[];
  /** Decay factor for step, multistep and plateau. Default 0.1. */
  gamma?: number;
  /** `plateau`: evaluations without improvement tolerated before decaying (PyTorch semantics). Default 10. */
  patience?: number;
  /** `plateau`: is the observed metric minimised (loss) or maximised (accuracy). Default 'min'. */
  mode?: 'min' | 'max';
  /** `plateau`: relative improvement that counts (PyTorch `threshold`, rel mode). Default 1e-4. */
  threshold?: number;
  /** Floor for the plateau-reduced lr. Default 0. */
  minLr?: number;
  /**
   * Linear scaling rule (Goyal et al. 2017): lr × worldSize·baseBatch/referenceBatch, i.e. the
   * spec's lr is the lr for `referenceBatch` (256) samples. Default false (lr used as given).
   */
  scaleWithWorldSize?: boolean;
}

export interface LrScheduleContext {
  /** Optimizer steps per epoch (per rank; every rank takes the same number). */
  stepsPerEpoch: number;
  /** Steps of the whole run; cosine reaches 0 here. */
  totalSteps: number;
  /** Data-parallel ranks. Default 1. */
  worldSize?: number;
  /** Per-rank batch size; required by the linear scaling rule. */
  baseBatch?: number;
  /** Batch size the spec's lr is meant for under the linear scaling rule. Default 256. */
  referenceBatch?: number;
}

/** Serialisable schedule state (only plateau has any); goes into a checkpoint's state.json. */
export interface LrScheduleState {
  type: LrScheduleType;
  plateau?: { best: number | null; bad: number; factor: number; reductions: number };
}

export interface LrSchedule {
  /** The peak lr: spec lr after the linear scaling rule. */
  readonly peakLr: number;
  /** Whether observe() expects a metric to minimise (loss) or maximise (accuracy). */
  readonly mode: 'min' | 'max';
  /** Learning rate for the update that follows `step` completed updates (step 0 = first update). */
  lr(step: number): number;
  /** Feed an evaluation metric (plateau only; others ignore it). Returns true if the lr was reduced. */
  observe(metric: number): boolean;
  state(): LrScheduleState;
  load(state: LrScheduleState): void;
}

const TYPES: LrScheduleType[] = ['constant', 'step', 'multistep', 'cosine', 'plateau'];

function invalid(msg: string): never {
  throw new TrainingError('INVALID_OPTIONS', `lrSchedule: ${msg}`);
}

/** One factory for every schedule: main schedule × linear warmup × linear scaling rule. */
export function createLrSchedule(spec: LrScheduleSpec, ctx: LrScheduleContext): LrSchedule {
  if (!TYPES.includes(spec.type)) invalid(`type must be one of ${TYPES.join(', ')}, got ${String(spec.type)}`);
  if (!(spec.lr > 0)) invalid(`lr must be > 0, got ${spec.lr}`);
  if (!(Number.isInteger(ctx.stepsPerEpoch) && ctx.stepsPerEpoch > 0)) invalid(`stepsPerEpoch must be a positive integer, got ${ctx.stepsPerEpoch}`);
  if (!(Number.isInteger(ctx.totalSteps) && ctx.totalSteps > 0)) invalid(`totalSteps must be a positive integer, got ${ctx.totalSteps}`);
  const worldSize = ctx.worldSize ?? 1;
  const referenceBatch = ctx.referenceBatch ?? 256;
  const gamma = spec.gamma ?? 0.1;
  const warmupSteps = spec.warmupSteps ?? 0;
  if (!(gamma > 0 && gamma <= 1)) invalid(`gamma must be in (0, 1], got ${gamma}`);
  if (!(Number.isInteger(warmupSteps) && warmupSteps >= 0)) invalid(`warmupSteps must be an integer >= 0, got ${warmupSteps}`);

  let scale = 1;
  if (spec.scaleWithWorldSize) {
    if (!(ctx.baseBatch && ctx.baseBatch > 0)) invalid('scaleWithWorldSize needs the per-rank batch size (baseBatch)');
    scale = (worldSize * ctx.baseBatch) / referenceBatch;
  }
  const peakLr = spec.lr * scale;
  const startFactor = spec.warmupStartFactor ?? (scale > 1 ? 1 / scale : 0);
  if (!(startFactor >= 0 && startFactor <= 1)) invalid(`warmupStartFactor must be in [0, 1], got ${startFactor}`);

  const epochOf = (step: number): number => Math.floor(step / ctx.stepsPerEpoch);
  let main: (step: number) => number;
  const plateau = { best: null as number | null, bad: 0, factor: 1, reductions: 0 };
  const patience = spec.patience ?? 10;
  const threshold = spec.threshold ?? 1e-4;
  const mode = spec.mode ?? 'min';
  const minLr = spec.minLr ?? 0;

  switch (spec.type) {
    case 'constant':
      main = () => 1;
      break;
    case 'step':
    case 'multistep': {
      // `step` with milestones is multistep (the job spec has only `step`).
      const ms = spec.milestones;
      if (spec.type === 'step' && ms === undefined) {
        const stepSize = spec.stepSize;
        if (!(stepSize !== undefined && Number.isInteger(stepSize) && stepSize > 0)) invalid(`type "step" needs stepSize (epochs, integer > 0) or milestones, got ${stepSize}`);
        main = (step) => Math.pow(gamma, Math.floor(epochOf(step) / stepSize));
        break;
      }
      if (spec.stepSize !== undefined) invalid('give either stepSize or milestones, not both');
      if (!ms || ms.length === 0 || ms.some((m, i) => !Number.isInteger(m) || m <= 0 || (i > 0 && m < ms[i - 1]))) {
        // A repeated milestone decays twice, as in PyTorch's MultiStepLR.
        invalid(`milestones must be non-decreasing positive integer epochs, got ${JSON.stringify(ms)}`);
      }
      main = (step) => Math.pow(gamma, ms.filter((m) => epochOf(step) >= m).length);
      break;
    }
    case 'cosine': {
      const span = ctx.totalSteps - warmupSteps;
      if (span <= 0) invalid(`cosine needs totalSteps (${ctx.totalSteps}) > warmupSteps (${warmupSteps})`);
      main = (step) => (step < warmupSteps ? 1 : 0.5 * (1 + Math.cos((Math.PI * Math.min(step - warmupSteps, span)) / span)));
      break;
    }
    case 'plateau':
      if (!(Number.isInteger(patience) && patience >= 0)) invalid(`patience must be an integer >= 0, got ${patience}`);
      if (mode !== 'min' && mode !== 'max') invalid(`mode must be "min" or "max", got ${String(mode)}`);
      main = () => Math.max(plateau.factor, minLr / peakLr);
      break;
  }

  const warm = (step: number): number => (step < warmupSteps ? startFactor + ((1 - startFactor) * step) / warmupSteps : 1);

  return {
    peakLr,
    mode,
    lr(step: number): number {
      if (!(Number.isInteger(step) && step >= 0)) invalid(`step must be an integer >= 0, got ${step}`);
      return peakLr * main(step) * warm(step);
    },
    observe(metric: number): boolean {
      if (spec.type !== 'plateau' || !Number.isFinite(metric)) return false;
      const better =
        plateau.best === null ||
        (mode === 'min' ? metric < plateau.best * (1 - threshold) : metric > plateau.best * (1 + threshold));
      if (better) {
        plateau.best = metric;
        plateau.bad = 0;
        return false;
      }
      plateau.bad += 1;
      if (plateau.bad <= patience) return false;
      plateau.factor *= gamma;
      plateau.reductions += 1;
      plateau.bad = 0;
      return true;
    },
    state(): LrScheduleState {
      return spec.type === 'plateau' ? { type: spec.type, plateau: { ...plateau } } : { type: spec.type };
    },
    load(state: LrScheduleState): void {
      if (state.type !== spec.type) {
        throw new TrainingError('STATE_MISMATCH', `checkpoint holds a "${state.type}" schedule but the job asks for "${spec.type}"`);
      }
      if (spec.type === 'plateau') {
        if (!state.plateau) throw new TrainingError('STATE_MISMATCH', 'plateau schedule state is missing its plateau fields');
        Object.assign(plateau, state.plateau);
      }
    },
  };
}
