import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors';
import { Graph } from './graph';
import { CommonOptions, assertPositiveInt } from './options';
import { LayerCount, ShapeGraph } from './shape-graph';
import { TfGraph } from './tf-graph';

/** An architecture family: one build function whose options are its variants. */
export interface ModelBuilder<O extends CommonOptions> {
  family: string;
  /** Every option with its default; also the list of options the family accepts. */
  defaults: O;
  /** Options a caller may change on any registered variant; every other option is fixed by the variant. */
  free: (keyof O)[];
  validate(o: O): void;
  build<T>(g: Graph<T>, o: O): T;
}

/** A registered variant: the options it sets (numClasses and inputSize stay overridable defaults). */
export type ModelDefaults<O extends CommonOptions> = Partial<O> & { description: string };

export interface ModelInfo {
  name: string;
  family: string;
  /** Trainable parameters at the default input size and numClasses. */
  params: number;
  /** Multiply-adds per image (conv + dense) at the default input size. */
  macs: number;
  defaultInputSize: number;
  /** Smallest input side the architecture accepts (every feature map at least 1×1). */
  minInputSize: number;
  numClasses: number;
  description: string;
}

export interface ModelSummary extends ModelInfo {
  inputSize: number;
  /** Non-trainable state (batch-norm moving statistics). */
  state: number;
  outputShape: number[];
  layers: LayerCount[];
}

export type CreateModelOptions = Partial<CommonOptions> & Record<string, unknown>;

interface Entry {
  name: string;
  builder: ModelBuilder<CommonOptions>;
  variant: Record<string, unknown>;
  description: string;
}

/** Options a caller may change on every model. */
const OVERRIDABLE = new Set(['numClasses', 'inputSize', 'seed', 'initWeights']);
const registry = new Map<string, Entry>();
let listCache: ModelInfo[] | null = null;

export function registerModel<O extends CommonOptions>(name: string, builder: ModelBuilder<O>, defaults: ModelDefaults<O>): void {
  if (registry.has(name)) throw new ModelError('DUPLICATE_MODEL', `model ${name} is already registered: pick another name`);
  const { description, ...variant } = defaults;
  for (const key of Object.keys(variant)) {
    if (!(key in builder.defaults)) throw new ModelError('UNKNOWN_OPTION', `model ${name}: ${builder.family} has no option ${key}`);
  }
  registry.set(name, { name, builder: builder as unknown as ModelBuilder<CommonOptions>, variant, description });
  listCache = null;
}

function entry(name: string): Entry {
  const e = registry.get(name);
  if (!e) throw new ModelError('UNKNOWN_MODEL', `unknown model ${name}: known models are ${[...registry.keys()].join(', ')}`);
  return e;
}

/**
 * Defaults, then the variant, then the caller. The variant fixes every option but numClasses,
 * inputSize, seed and the family's `free` ones: asking resnet50 for cardinality 32 is an error
 * (that is resnext50_32x4d), not a silent override.
 */
export function resolveOptions(name: string, opts: CreateModelOptions = {}): CommonOptions {
  const e = entry(name);
  const fixed = { ...e.builder.defaults, ...e.variant } as Record<string, unknown>;
  const free = new Set<string>([...OVERRIDABLE, ...(e.builder.free as string[])]);
  for (const [key, value] of Object.entries(opts)) {
    if (value === undefined) continue;
    if (!(key in e.builder.defaults) && !OVERRIDABLE.has(key)) {
      throw new ModelError('UNKNOWN_OPTION', `model ${name} (${e.builder.family}) has no option ${key}; options: ${Object.keys(e.builder.defaults).join(', ')}`);
    }
    if (!free.has(key) && JSON.stringify(fixed[key]) !== JSON.stringify(value)) {
      throw new ModelError('OPTION_CONFLICT', `model ${name} fixes ${key}=${JSON.stringify(fixed[key])}; got ${JSON.stringify(value)}: pick the model that has it or leave it out`);
    }
  }
  const defined = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
  const o = { ...e.builder.defaults, ...e.variant, ...defined } as CommonOptions;
  assertPositiveInt('numClasses', o.numClasses);
  assertPositiveInt('inputSize', o.inputSize);
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw new ModelError('INVALID_OPTION', `option seed must be an integer, got ${o.seed}`);
  if (o.initWeights !== undefined && typeof o.initWeights !== 'boolean') throw new ModelError('INVALID_OPTION', `option initWeights must be a boolean, got ${o.initWeights}`);
  e.builder.validate(o);
  return o;
}

/** The builder of a registered model (its family's; the options come from resolveOptions). */
export function builderOf(name: string): ModelBuilder<CommonOptions> {
  return entry(name).builder;
}

/** The architecture family of a registered model ('resnet', 'alexnet'): a lookup, nothing built. */
export function modelFamily(name: string): string {
  return entry(name).builder.family;
}

/** Parameters, multiply-adds and per-layer shapes, from the layer configs alone (no weights). */
export function describeModel(name: string, opts: CreateModelOptions = {}): ModelSummary {
  const e = entry(name);
  const o = resolveOptions(name, opts);
  const g = new ShapeGraph();
  const out = e.builder.build(g, o);
  const defaults = { ...e.builder.defaults, ...e.variant };
  return {
    name, family: e.builder.family, description: e.description,
    params: g.params, macs: g.macs, state: g.state,
    defaultInputSize: defaults.inputSize, minInputSize: minInputSize(name, { ...opts, inputSize: undefined }), numClasses: o.numClasses, inputSize: o.inputSize,
    outputShape: out.shape, layers: g.layers,
  };
}

function fits(name: string, opts: CreateModelOptions, inputSize: number): boolean {
  try {
    entry(name).builder.build(new ShapeGraph(), resolveOptions(name, { ...opts, inputSize }));
    return true;
  } catch (e) {
    if (e instanceof ModelError && e.code === 'INPUT_TOO_SMALL') return false;
    throw e;
  }
}

/** Smallest square input the model accepts, by bisection over the shape graph. */
export function minInputSize(name: string, opts: CreateModelOptions = {}): number {
  let lo = 1;
  let hi = 16;
  while (!fits(name, opts, hi)) {
    lo = hi + 1;
    hi *= 2;
    if (hi > 1 << 16) throw new ModelError('INVALID_OPTION', `model ${name} accepts no input up to ${hi}px`);
  }
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (fits(name, opts, mid)) hi = mid;
    else lo = mid + 1;
  }
  return hi;
}

/** Builds the tfjs layers model. Its output is logits (no softmax), as torchvision's. */
export function createModel(name: string, opts: CreateModelOptions = {}): tf.LayersModel {
  const e = entry(name);
  const o = resolveOptions(name, opts);
  e.builder.build(new ShapeGraph(), o); // readable errors (e.g. INPUT_TOO_SMALL) before tfjs sees the sizes
  const g = new TfGraph(o.seed, o.initWeights ?? true);
  const output = e.builder.build(g, o);
  return tf.model({ inputs: g.inputs, outputs: output, name });
}

/** Every registered model at its default input size and class count; cached, computed without weights. */
export function listModels(): ModelInfo[] {
  if (!listCache) {
    listCache = [...registry.keys()].map((name) => {
      const { inputSize: _i, state: _s, outputShape: _o, layers: _l, ...info } = describeModel(name);
      return info;
    });
  }
  return listCache.map((m) => ({ ...m }));
}

export function modelNames(): string[] {
  return [...registry.keys()];
}
