import { ModelError } from './errors';
import { ConvSpec, DenseSpec, Graph, LrnSpec, PoolSpec, convOutSize } from './graph';

/** A tensor as the shape graph sees it: [h, w, c] for maps, [n] for vectors (batch left out). */
export interface ShapeT {
  shape: number[];
}

export interface LayerCount {
  name: string;
  kind: string;
  outShape: number[];
  /** Trainable parameters. */
  params: number;
  /** Non-trainable state (batch-norm moving mean and variance). */
  state: number;
  /** Multiply-adds per image (convolutions and dense layers only, as torchvision reports). */
  macs: number;
  /** The section (Graph.section) the layer was built in; '' before the first. */
  section: string;
}

/** Follows shapes and counts parameters and multiply-adds without allocating weights. */
export class ShapeGraph implements Graph<ShapeT> {
  readonly layers: LayerCount[] = [];
  private current = '';

  get params(): number {
    return this.layers.reduce((s, l) => s + l.params, 0);
  }
  get state(): number {
    return this.layers.reduce((s, l) => s + l.state, 0);
  }
  get macs(): number {
    return this.layers.reduce((s, l) => s + l.macs, 0);
  }

  private out(name: string, kind: string, shape: number[], params = 0, macs = 0, state = 0): ShapeT {
    if (shape.some((d) => !(d >= 1))) {
      throw new ModelError('INPUT_TOO_SMALL', `layer ${name} would produce shape [${shape.join(', ')}]: use a larger inputSize`);
    }
    this.layers.push({ name, kind, outShape: shape, params, state, macs, section: this.current });
    return { shape };
  }

  section(name: string): void {
    this.current = name;
  }

  private map(x: ShapeT, name: string): [number, number, number] {
    if (x.shape.length !== 3) throw new ModelError('INVALID_OPTION', `layer ${name} needs a feature map, got [${x.shape.join(', ')}]`);
    return x.shape as [number, number, number];
  }

  input(size: number, channels: number): ShapeT {
    return this.out('input', 'input', [size, size, channels]);
  }

  conv(x: ShapeT, s: ConvSpec): ShapeT {
    const [h, w, c] = this.map(x, s.name);
    const stride = s.stride ?? 1;
    const padding = s.padding ?? 0;
    const groups = s.groups ?? 1;
    if (c % groups !== 0 || s.filters % groups !== 0) {
      throw new ModelError('INVALID_OPTION', `layer ${s.name}: ${c} input and ${s.filters} output channels do not split into ${groups} groups`);
    }
    const ho = convOutSize(h, s.kernel, stride, padding);
    const wo = convOutSize(w, s.kernel, stride, padding);
    const perOut = s.kernel * s.kernel * (c / groups);
    const params = perOut * s.filters + (s.bias ? s.filters : 0);
    return this.out(s.name, groups > 1 ? 'grouped-conv' : 'conv', [ho, wo, s.filters], params, ho * wo * s.filters * perOut);
  }

  batchNorm(x: ShapeT, s: { name: string }): ShapeT {
    const c = x.shape[x.shape.length - 1];
    return this.out(s.name, 'batch-norm', x.shape, 2 * c, 0, 2 * c);
  }

  relu(x: ShapeT, name: string): ShapeT {
    return this.out(name, 'relu', x.shape);
  }

  sigmoid(x: ShapeT, name: string): ShapeT {
    return this.out(name, 'sigmoid', x.shape);
  }

  maxPool(x: ShapeT, s: PoolSpec): ShapeT {
    const [h, w, c] = this.map(x, s.name);
    const p = s.padding ?? 0;
    return this.out(s.name, 'max-pool', [convOutSize(h, s.size, s.stride, p), convOutSize(w, s.size, s.stride, p), c]);
  }

  avgPoolCeil(x: ShapeT, s: { name: string; size: number; stride: number }): ShapeT {
    const [h, w, c] = this.map(x, s.name);
    return this.out(s.name, 'avg-pool', [Math.ceil(h / s.stride), Math.ceil(w / s.stride), c]);
  }

  globalAvgPool(x: ShapeT, name: string, keepDims = false): ShapeT {
    const [, , c] = this.map(x, name);
    return this.out(name, 'global-avg-pool', keepDims ? [1, 1, c] : [c]);
  }

  adaptiveAvgPool(x: ShapeT, s: { name: string; size: number }): ShapeT {
    const [h, w, c] = this.map(x, s.name);
    if (h === s.size && w === s.size) return x;
    return this.out(s.name, 'adaptive-avg-pool', [s.size, s.size, c]);
  }

  flatten(x: ShapeT, name: string): ShapeT {
    return this.out(name, 'flatten', [x.shape.reduce((a, b) => a * b, 1)]);
  }

  dense(x: ShapeT, s: DenseSpec): ShapeT {
    if (x.shape.length !== 1) throw new ModelError('INVALID_OPTION', `dense layer ${s.name} needs a vector, got [${x.shape.join(', ')}]`);
    const n = x.shape[0];
    return this.out(s.name, 'dense', [s.units], n * s.units + s.units, n * s.units);
  }

  dropout(x: ShapeT, s: { name: string }): ShapeT {
    return this.out(s.name, 'dropout', x.shape);
  }

  lrn(x: ShapeT, s: LrnSpec): ShapeT {
    return this.out(s.name, 'lrn', x.shape);
  }

  add(xs: ShapeT[], name: string): ShapeT {
    const key = xs[0].shape.join('x');
    if (xs.some((x) => x.shape.join('x') !== key)) {
      throw new ModelError('INVALID_OPTION', `add ${name}: shapes differ (${xs.map((x) => x.shape.join('x')).join(' vs ')})`);
    }
    return this.out(name, 'add', xs[0].shape);
  }

  multiply(a: ShapeT, _b: ShapeT, name: string): ShapeT {
    return this.out(name, 'multiply', a.shape);
  }

  concat(xs: ShapeT[], name: string): ShapeT {
    const lead = xs[0].shape.slice(0, -1);
    if (xs.some((x) => x.shape.slice(0, -1).join('x') !== lead.join('x'))) {
      throw new ModelError('INVALID_OPTION', `concat ${name}: shapes differ (${xs.map((x) => x.shape.join('x')).join(' vs ')})`);
    }
    return this.out(name, 'concat', [...lead, xs.reduce((s, x) => s + this.channels(x), 0)]);
  }

  padShortcut(x: ShapeT, s: { name: string; stride: number; channels: number }): ShapeT {
    const [h, w] = this.map(x, s.name);
    return this.out(s.name, 'pad-shortcut', [Math.ceil(h / s.stride), Math.ceil(w / s.stride), s.channels]);
  }

  channels(x: ShapeT): number {
    return x.shape[x.shape.length - 1];
  }
}
