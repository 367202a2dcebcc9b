/**
 * The vocabulary the architectures are written in. A builder is generic over the tensor type,
 * so the same code either builds tfjs layers (`TfGraph`) or only follows shapes and counts
 * parameters and multiply-adds (`ShapeGraph`) without allocating a single weight.
 */

/** How a weight is initialised; `fanIn`/`fanOut` follow PyTorch (`kh*kw*cin/groups`, `kh*kw*cout`). */
export type Init =
  | { dist: 'normal'; std: number }
  | { dist: 'uniform'; limit: number }
  | { dist: 'constant'; value: number };

export interface ConvSpec {
  name: string;
  filters: number;
  kernel: number;
  /** Default 1. */
  stride?: number;
  /** Symmetric zero padding as in PyTorch (`nn.Conv2d(padding=p)`). Default 0. */
  padding?: number;
  /** Grouped convolution (ResNeXt, AlexNet columns). Default 1. */
  groups?: number;
  /** Default false (ResNet convs are followed by batch norm). */
  bias?: boolean;
  /** Default: Kaiming normal, fan_out, gain √2 (torchvision ResNet). */
  init?: Init;
  biasInit?: Init;
}

export interface DenseSpec {
  name: string;
  units: number;
  /** Default: PyTorch's nn.Linear default, U(±1/√fan_in) for weight and bias. */
  init?: Init;
  biasInit?: Init;
}

export interface PoolSpec {
  name: string;
  size: number;
  stride: number;
  /** PyTorch-style symmetric padding. Max-pool pads with zeros, so use it only after a ReLU. */
  padding?: number;
}

export interface LrnSpec {
  name: string;
  /** Channels in the window (n). */
  size: number;
  /** PyTorch/Caffe convention: the sum of squares is scaled by alpha / size. */
  alpha: number;
  beta: number;
  k: number;
}

export interface Graph<T> {
  /**
   * Starts a named section: the layers built next belong to it until the next section. A
   * section is a unit a model may be partitioned at (a ResNet's stem, each block, its head;
   * AlexNet's spans between the columns' exchanges): one tensor or a set of named tensors
   * crosses each boundary.
   */
  section(name: string): void;
  input(size: number, channels: number): T;
  conv(x: T, spec: ConvSpec): T;
  /** Batch norm over channels (eps 1e-5, momentum 0.1 as PyTorch); gamma=0 when `zeroGamma`. */
  batchNorm(x: T, spec: { name: string; zeroGamma?: boolean }): T;
  relu(x: T, name: string): T;
  sigmoid(x: T, name: string): T;
  maxPool(x: T, spec: PoolSpec): T;
  /** Average pool with ceil mode and without counting padding (ResNet-D shortcut). */
  avgPoolCeil(x: T, spec: { name: string; size: number; stride: number }): T;
  /** Global average pool; `keepDims` keeps a 1×1 map (for squeeze-and-excitation). */
  globalAvgPool(x: T, name: string, keepDims?: boolean): T;
  /** PyTorch's AdaptiveAvgPool2d; identity when the map already has that size. */
  adaptiveAvgPool(x: T, spec: { name: string; size: number }): T;
  flatten(x: T, name: string): T;
  dense(x: T, spec: DenseSpec): T;
  dropout(x: T, spec: { name: string; rate: number }): T;
  lrn(x: T, spec: LrnSpec): T;
  add(xs: T[], name: string): T;
  /** Elementwise product with broadcasting of 1×1 maps. */
  multiply(a: T, b: T, name: string): T;
  concat(xs: T[], name: string): T;
  /** Option-A shortcut: subsample by `stride`, zero-pad channels to `channels` (He et al. 2015, §4.2). */
  padShortcut(x: T, spec: { name: string; stride: number; channels: number }): T;
  channels(x: T): number;
}

/** PyTorch's output size: floor((n + 2p - k) / s) + 1. */
export function convOutSize(n: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((n + 2 * padding - kernel) / stride) + 1;
}

export const kaimingNormalFanOut = (kernel: number, filters: number): Init => ({
  dist: 'normal',
  std: Math.sqrt(2 / (kernel * kernel * filters)),
});

/** nn.Conv2d / nn.Linear default (kaiming_uniform with a=√5): U(±1/√fan_in). */
export const torchDefault = (fanIn: number): Init => ({ dist: 'uniform', limit: 1 / Math.sqrt(fanIn) });
