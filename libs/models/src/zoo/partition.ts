import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors';
import { ConvSpec, DenseSpec, Graph, LrnSpec, PoolSpec } from './graph';
import { CreateModelOptions, builderOf, resolveOptions } from './registry';
import { ShapeGraph, ShapeT } from './shape-graph';
import { TfGraph } from './tf-graph';

type Sym = tf.SymbolicTensor;

/** A tensor while a part is built: its shape always, its layers tensor only if the part computes it. */
interface PartTensor extends ShapeT {
  id: number;
  /** Name of the layer that produced it ('input' for the image). */
  producer: string;
  sym: Sym | null;
}

/**
 * Which layers a part builds, by layer name and section (Graph.section); `replicated` ones
 * (the image input always) are built by every part that needs them, so their outputs never
 * leave a part.
 */
export interface PartOwner {
  owns(layer: string, section: string): boolean;
  replicated?(layer: string): boolean;
}

/** A tensor crossing the part's boundary, named by the layer that produces it. */
export interface PartPort {
  name: string;
  /** Without the batch dimension. */
  shape: number[];
}

export interface ModelPart {
  /** Inputs in `inputs` order, outputs in `outputs` order; layers and weights named as in the whole model. */
  model: tf.LayersModel;
  /** What the part reads: the image ('input') and tensors other parts produce. */
  inputs: PartPort[];
  /** What the part produces for other parts, and the logits ('fc', 'fc8') if it computes them. */
  outputs: PartPort[];
}

/**
 * Builds the layers of a model that `owns` selects, and only those: each rank of a
 * model-parallel job allocates the weights of its own part. The part's weights are those of
 * the whole model built with the same options and seed (the initializers of the layers left
 * out still take their seeds), so a part starts where the single-process model starts. Tensors
 * produced outside the part become its inputs, its tensors read outside become its outputs.
 */
export function createModelPart(name: string, opts: CreateModelOptions, owns: PartOwner, partName = `${name}_part`): ModelPart {
  const o = resolveOptions(name, opts);
  const builder = builderOf(name);
  builder.build(new ShapeGraph(), o); // readable errors (e.g. INPUT_TOO_SMALL) before tfjs sees the sizes
  const g = new PartGraph(owns, new TfGraph(o.seed, o.initWeights ?? true));
  const out = builder.build(g, o);
  return g.finish(out, partName);
}

class PartGraph implements Graph<PartTensor> {
  private readonly shapes = new ShapeGraph();
  private current = '';
  private nextId = 0;
  private readonly inputs: (PartPort & { sym: Sym })[] = [];
  private readonly outputs = new Map<number, PartPort & { sym: Sym }>();
  /** Boundary inputs made for tensors produced elsewhere, by tensor id. */
  private readonly received = new Map<number, Sym>();
  private built = 0;

  constructor(private readonly owner: PartOwner, private readonly tfg: TfGraph) {}

  finish(out: PartTensor, partName: string): ModelPart {
    if (this.built === 0) throw new ModelError('INVALID_OPTION', `part ${partName} owns no layer of the model`);
    // The model's output (the logits) always leaves the part that computes it, replicated or not.
    if (out.sym && !this.outputs.has(out.id)) this.outputs.set(out.id, { name: out.producer, shape: out.shape, sym: out.sym });
    const outputs = [...this.outputs.values()];
    const model = tf.model({ inputs: this.inputs.map((p) => p.sym), outputs: outputs.map((p) => p.sym), name: partName });
    const port = (p: PartPort) => ({ name: p.name, shape: p.shape.slice() });
    return { model, inputs: this.inputs.map(port), outputs: outputs.map(port) };
  }

  section(name: string): void {
    this.current = name;
    this.shapes.section(name);
  }

  private markOutput(t: PartTensor): void {
    if (t.producer === 'input' || this.owner.replicated?.(t.producer)) return;
    if (t.sym && !this.outputs.has(t.id)) this.outputs.set(t.id, { name: t.producer, shape: t.shape, sym: t.sym });
  }

  private symOf(t: PartTensor): Sym {
    if (t.sym) return t.sym;
    let sym = this.received.get(t.id);
    if (!sym) {
      sym = tf.input({ shape: t.shape, name: `${t.producer}__in` });
      this.received.set(t.id, sym);
      this.inputs.push({ name: t.producer, shape: t.shape, sym });
    }
    return sym;
  }

  /** One layer: its shape always; built when owned (its inputs then come from here or from outside), else skipped. */
  private layer(name: string, xs: PartTensor[], shape: ShapeT, build: (syms: Sym[]) => Sym, skip?: () => void): PartTensor {
    let sym: Sym | null = null;
    if (this.owner.owns(name, this.current)) {
      sym = build(xs.map((x) => this.symOf(x)));
      this.built++;
    } else {
      skip?.();
      for (const x of xs) this.markOutput(x);
    }
    return { id: this.nextId++, producer: name, shape: shape.shape, sym };
  }

  input(size: number, channels: number): PartTensor {
    const shape = this.shapes.input(size, channels);
    const t = this.layer('input', [], shape, () => this.tfg.input(size, channels));
    if (t.sym) this.inputs.push({ name: 'input', shape: t.shape, sym: t.sym });
    return t;
  }

  conv(x: PartTensor, s: ConvSpec): PartTensor {
    return this.layer(s.name, [x], this.shapes.conv(x, s), ([a]) => this.tfg.conv(a, s), () => this.tfg.skipInits('conv', s));
  }

  batchNorm(x: PartTensor, s: { name: string; zeroGamma?: boolean }): PartTensor {
    return this.layer(s.name, [x], this.shapes.batchNorm(x, s), ([a]) => this.tfg.batchNorm(a, s));
  }

  relu(x: PartTensor, name: string): PartTensor {
    return this.layer(name, [x], this.shapes.relu(x, name), ([a]) => this.tfg.relu(a, name));
  }

  sigmoid(x: PartTensor, name: string): PartTensor {
    return this.layer(name, [x], this.shapes.sigmoid(x, name), ([a]) => this.tfg.sigmoid(a, name));
  }

  maxPool(x: PartTensor, s: PoolSpec): PartTensor {
    return this.layer(s.name, [x], this.shapes.maxPool(x, s), ([a]) => this.tfg.maxPool(a, s));
  }

  avgPoolCeil(x: PartTensor, s: { name: string; size: number; stride: number }): PartTensor {
    return this.layer(s.name, [x], this.shapes.avgPoolCeil(x, s), ([a]) => this.tfg.avgPoolCeil(a, s));
  }

  globalAvgPool(x: PartTensor, name: string, keepDims = false): PartTensor {
    return this.layer(name, [x], this.shapes.globalAvgPool(x, name, keepDims), ([a]) => this.tfg.globalAvgPool(a, name, keepDims));
  }

  adaptiveAvgPool(x: PartTensor, s: { name: string; size: number }): PartTensor {
    // The identity when the map already has that size, as in the whole model: no layer.
    if (x.shape[0] === s.size && x.shape[1] === s.size) return x;
    return this.layer(s.name, [x], this.shapes.adaptiveAvgPool(x, s), ([a]) => this.tfg.adaptiveAvgPool(a, s));
  }

  flatten(x: PartTensor, name: string): PartTensor {
    return this.layer(name, [x], this.shapes.flatten(x, name), ([a]) => this.tfg.flatten(a, name));
  }

  dense(x: PartTensor, s: DenseSpec): PartTensor {
    return this.layer(s.name, [x], this.shapes.dense(x, s), ([a]) => this.tfg.dense(a, s), () => this.tfg.skipInits('dense', s));
  }

  dropout(x: PartTensor, s: { name: string; rate: number }): PartTensor {
    return this.layer(s.name, [x], this.shapes.dropout(x, s), ([a]) => this.tfg.dropout(a, s));
  }

  lrn(x: PartTensor, s: LrnSpec): PartTensor {
    return this.layer(s.name, [x], this.shapes.lrn(x, s), ([a]) => this.tfg.lrn(a, s));
  }

  add(xs: PartTensor[], name: string): PartTensor {
    return this.layer(name, xs, this.shapes.add(xs, name), (syms) => this.tfg.add(syms, name));
  }

  multiply(a: PartTensor, b: PartTensor, name: string): PartTensor {
    return this.layer(name, [a, b], this.shapes.multiply(a, b, name), ([p, q]) => this.tfg.multiply(p, q, name));
  }

  concat(xs: PartTensor[], name: string): PartTensor {
    return this.layer(name, xs, this.shapes.concat(xs, name), (syms) => this.tfg.concat(syms, name));
  }

  padShortcut(x: PartTensor, s: { name: string; stride: number; channels: number }): PartTensor {
    return this.layer(s.name, [x], this.shapes.padShortcut(x, s), ([a]) => this.tfg.padShortcut(a, s));
  }

  channels(x: PartTensor): number {
    return x.shape[x.shape.length - 1];
  }
}

/** A model's sections in build order, each with what it costs (from the layer configs, no weights). */
export interface ModelSection {
  name: string;
  /** Trainable parameters, non-trainable state (BN statistics) and multiply-adds per image. */
  params: number;
  state: number;
  macs: number;
  /** Elements per image of the section's last layer's output (what crosses a cut after it). */
  outElements: number;
  layers: number;
}

export function modelSections(name: string, opts: CreateModelOptions = {}): ModelSection[] {
  const g = new ShapeGraph();
  builderOf(name).build(g, resolveOptions(name, opts));
  const out: ModelSection[] = [];
  for (const l of g.layers) {
    let s = out[out.length - 1];
    if (!s || s.name !== l.section) out.push((s = { name: l.section, params: 0, state: 0, macs: 0, outElements: 0, layers: 0 }));
    s.params += l.params;
    s.state += l.state;
    s.macs += l.macs;
    s.layers++;
    s.outElements = l.outShape.reduce((a, b) => a * b, 1);
  }
  return out;
}

/** The owner of a pipeline stage: every layer of the given sections (consecutive ones, for a pipeline). */
export function sectionsOwner(sections: readonly string[]): PartOwner {
  const set = new Set(sections);
  return { owns: (_layer, section) => set.has(section) };
}
