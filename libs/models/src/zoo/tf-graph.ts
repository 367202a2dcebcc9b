import * as tf from '@tensorflow/tfjs';
import { ConvSpec, DenseSpec, Graph, Init, LrnSpec, PoolSpec, kaimingNormalFanOut, torchDefault } from './graph';
import { batchNormalization } from '../backend/batch-norm-layer';
import { conv2d } from '../backend/conv2d-layer';
import { AdaptiveAvgPool2D, GroupedConv2D, LocalResponseNorm, PadShortcut, isRandom, makeInitializer } from './layers';

type Sym = tf.SymbolicTensor;

/**
 * Builds tfjs layers. With a `seed`, the k-th random initializer in build order gets seed + k,
 * so the same seed gives the same weights in every process.
 */
export class TfGraph implements Graph<Sym> {
  private randomInits = 0;
  readonly inputs: Sym[] = [];

  /** `randomInit` false: random initializers become zeros (weights are loaded next). */
  constructor(private readonly seed?: number, private readonly randomInit = true) {}

  private effective(init: Init): Init {
    return this.randomInit || !isRandom(init) ? init : { dist: 'constant', value: 0 };
  }

  private init(init: Init) {
    return makeInitializer(this.effective(init), this.seedFor(init)) as never;
  }

  private seedFor(init: Init): number | undefined {
    return this.seed === undefined || !isRandom(init) ? undefined : this.seed + this.randomInits++;
  }

  /**
   * Takes the seeds a conv or dense layer built elsewhere would take, without building it: a
   * part of a model (partition.ts) then gets the same weights as the whole model.
   */
  skipInits(kind: 'conv', s: ConvSpec): void;
  skipInits(kind: 'dense', s: DenseSpec): void;
  skipInits(kind: 'conv' | 'dense', s: ConvSpec | DenseSpec): void {
    // The fan-in of the defaults does not matter here: only whether an initializer is random.
    const fallback = torchDefault(1);
    if (kind === 'conv') {
      const c = s as ConvSpec;
      this.seedFor(c.init ?? kaimingNormalFanOut(c.kernel, c.filters));
      if (c.bias) this.seedFor(c.biasInit ?? fallback);
    } else {
      this.seedFor(s.init ?? fallback);
      this.seedFor(s.biasInit ?? fallback);
    }
  }

  section(_name: string): void {
    // Sections matter to partitions and counts, not to the layers.
  }

  private apply(layer: tf.layers.Layer, x: Sym | Sym[]): Sym {
    return layer.apply(x) as Sym;
  }

  /** PyTorch pads symmetrically; tfjs 'same' does so only at stride 1 with an odd kernel. */
  private pad(x: Sym, name: string, kernel: number, stride: number, padding: number): [Sym, 'same' | 'valid'] {
    if (padding === 0) return [x, 'valid'];
    if (stride === 1 && kernel % 2 === 1 && padding === (kernel - 1) / 2) return [x, 'same'];
    return [this.apply(tf.layers.zeroPadding2d({ name: `${name}_pad`, padding: padding }), x), 'valid'];
  }

  input(size: number, channels: number): Sym {
    const x = tf.input({ shape: [size, size, channels], name: 'input' });
    this.inputs.push(x);
    return x;
  }

  conv(x: Sym, s: ConvSpec): Sym {
    const stride = s.stride ?? 1;
    const groups = s.groups ?? 1;
    const kernelInit = s.init ?? kaimingNormalFanOut(s.kernel, s.filters);
    const biasInit = s.biasInit ?? torchDefault(s.kernel * s.kernel * (this.channels(x) / groups));
    const [input, padding] = this.pad(x, s.name, s.kernel, stride, s.padding ?? 0);
    if (groups > 1) {
      const kernelSeed = this.seedFor(kernelInit);
      const biasSeed = s.bias ? this.seedFor(biasInit) : undefined;
      const layer = new GroupedConv2D({
        name: s.name, filters: s.filters, kernelSize: s.kernel, strides: stride, padding, groups, useBias: !!s.bias,
        kernelInit: this.effective(kernelInit), biasInit: s.bias ? this.effective(biasInit) : undefined, kernelSeed, biasSeed,
      });
      return this.apply(layer, input);
    }
    // The stock layer, except that a gradient nobody asks for (the input image's) is not computed (backend/conv2d-layer).
    return this.apply(
      conv2d({
        name: s.name, filters: s.filters, kernelSize: s.kernel, strides: stride, padding, useBias: !!s.bias,
        kernelInitializer: this.init(kernelInit), biasInitializer: s.bias ? this.init(biasInit) : undefined,
      }),
      input,
    );
  }

  batchNorm(x: Sym, s: { name: string; zeroGamma?: boolean }): Sym {
    // Stock layer except in wasm training, where it runs as one fused kernel (backend/batch-norm-layer).
    return this.apply(
      batchNormalization({
        name: s.name, axis: -1, momentum: 0.9, epsilon: 1e-5,
        gammaInitializer: s.zeroGamma ? 'zeros' : 'ones', betaInitializer: 'zeros',
      }),
      x,
    );
  }

  relu(x: Sym, name: string): Sym {
    return this.apply(tf.layers.reLU({ name }), x);
  }

  sigmoid(x: Sym, name: string): Sym {
    return this.apply(tf.layers.activation({ name, activation: 'sigmoid' }), x);
  }

  maxPool(x: Sym, s: PoolSpec): Sym {
    const [input, padding] = this.pad(x, s.name, s.size, s.stride, s.padding ?? 0);
    return this.apply(tf.layers.maxPooling2d({ name: s.name, poolSize: s.size, strides: s.stride, padding }), input);
  }

  avgPoolCeil(x: Sym, s: { name: string; size: number; stride: number }): Sym {
    return this.apply(tf.layers.averagePooling2d({ name: s.name, poolSize: s.size, strides: s.stride, padding: 'same' }), x);
  }

  globalAvgPool(x: Sym, name: string, keepDims = false): Sym {
    const pooled = this.apply(tf.layers.globalAveragePooling2d({ name }), x);
    if (!keepDims) return pooled;
    return this.apply(tf.layers.reshape({ name: `${name}_keepdims`, targetShape: [1, 1, this.channels(x)] }), pooled);
  }

  adaptiveAvgPool(x: Sym, s: { name: string; size: number }): Sym {
    if (x.shape[1] === s.size && x.shape[2] === s.size) return x;
    return this.apply(new AdaptiveAvgPool2D({ name: s.name, size: s.size }), x);
  }

  flatten(x: Sym, name: string): Sym {
    return this.apply(tf.layers.flatten({ name }), x);
  }

  dense(x: Sym, s: DenseSpec): Sym {
    const fanIn = x.shape[x.shape.length - 1] as number;
    const kernelInit = s.init ?? torchDefault(fanIn);
    const biasInit = s.biasInit ?? torchDefault(fanIn);
    return this.apply(
      tf.layers.dense({ name: s.name, units: s.units, kernelInitializer: this.init(kernelInit), biasInitializer: this.init(biasInit) }),
      x,
    );
  }

  dropout(x: Sym, s: { name: string; rate: number }): Sym {
    return this.apply(tf.layers.dropout({ name: s.name, rate: s.rate }), x);
  }

  lrn(x: Sym, s: LrnSpec): Sym {
    return this.apply(new LocalResponseNorm({ name: s.name, size: s.size, alpha: s.alpha, beta: s.beta, k: s.k }), x);
  }

  add(xs: Sym[], name: string): Sym {
    return this.apply(tf.layers.add({ name }), xs);
  }

  multiply(a: Sym, b: Sym, name: string): Sym {
    return this.apply(tf.layers.multiply({ name }), [a, b]);
  }

  concat(xs: Sym[], name: string): Sym {
    return this.apply(tf.layers.concatenate({ name, axis: -1 }), xs);
  }

  padShortcut(x: Sym, s: { name: string; stride: number; channels: number }): Sym {
    return this.apply(new PadShortcut(s), x);
  }

  channels(x: Sym): number {
    return x.shape[x.shape.length - 1] as number;
  }
}
