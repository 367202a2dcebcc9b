import { ModelError } from './errors';
import { Graph } from './graph';
import { CommonOptions, assertOneOf, assertPositiveInt } from './options';

/**
 * ResNet (He et al. 2015) and the variants that are options of it: ResNeXt (Xie et al. 2017),
 * SE-ResNet (Hu et al. 2018), ResNet-D (He et al. 2019, "Bag of tricks"), the CIFAR ResNets.
 * Layout and names follow torchvision (stride on the 3×3 of the bottleneck, "v1.5").
 */
export interface ResNetOptions extends CommonOptions {
  /** 'basic' (two 3×3, ResNet-18/34, CIFAR) or 'bottleneck' (1×1, 3×3, 1×1 ×4). Default 'basic'. */
  block: 'basic' | 'bottleneck';
  /** Blocks per stage. Default [2, 2, 2, 2] (ResNet-18). */
  layers: number[];
  /** Planes per stage (block output = planes × expansion). Default [64, 128, 256, 512]; CIFAR [16, 32, 64]. */
  widths: number[];
  /** 'imagenet': 7×7/2 conv + 3×3/2 max-pool; 'deep': three 3×3 convs + max-pool (ResNet-C/D); 'cifar': one 3×3 conv. Default 'imagenet'. */
  stem: 'imagenet' | 'deep' | 'cifar';
  /** Stem output channels; for 'deep' the first two convs' width, the stem then outputs 2 × stemWidth. Default 64. */
  stemWidth: number;
  /** Groups of the bottleneck 3×3 (ResNeXt). Default 1. */
  cardinality: number;
  /** Bottleneck width per group at 64 planes (ResNeXt 4 or 8, Wide-ResNet 128). Default 64. */
  widthPerGroup: number;
  /** Squeeze-and-excitation reduction ratio; 0 = no SE. Default 0 (SE-ResNet: 16). */
  seReduction: number;
  /** Downsample the projection shortcut with a 2×2 average pool before a stride-1 1×1 conv (ResNet-D). Default false. */
  avgDown: boolean;
  /** 'B': 1×1 projection + BN where shapes change; 'A': subsample + zero channels, no parameters. Default 'B'. */
  shortcut: 'A' | 'B';
  /** Last BN scale of each block starts at 0, so each block starts as the identity (Goyal et al. 2017). Default false. */
  zeroInitLastBn: boolean;
}

export const resnetDefaults: ResNetOptions = {
  numClasses: 1000, inputSize: 224, seed: undefined,
  block: 'basic', layers: [2, 2, 2, 2], widths: [64, 128, 256, 512], stem: 'imagenet', stemWidth: 64,
  cardinality: 1, widthPerGroup: 64, seReduction: 0, avgDown: false, shortcut: 'B', zeroInitLastBn: false,
};

const conv3x3 = <T>(g: Graph<T>, x: T, name: string, filters: number, stride = 1, groups = 1): T =>
  g.conv(x, { name, filters, kernel: 3, stride, padding: 1, groups });

const conv1x1 = <T>(g: Graph<T>, x: T, name: string, filters: number, stride = 1): T =>
  g.conv(x, { name, filters, kernel: 1, stride });

/** timm's make_divisible(v, 8, round_limit=0): SE reduced width, at least 8. */
const makeDivisible = (v: number, divisor = 8): number => Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);

function squeezeExcite<T>(g: Graph<T>, x: T, name: string, reduction: number): T {
  const c = g.channels(x);
  let s = g.globalAvgPool(x, `${name}_pool`, true);
  s = g.conv(s, { name: `${name}_fc1`, filters: makeDivisible(c / reduction), kernel: 1, bias: true });
  s = g.relu(s, `${name}_relu`);
  s = g.conv(s, { name: `${name}_fc2`, filters: c, kernel: 1, bias: true });
  return g.multiply(x, g.sigmoid(s, `${name}_gate`), `${name}_scale`);
}

function shortcut<T>(g: Graph<T>, x: T, name: string, channels: number, stride: number, o: ResNetOptions): T {
  if (stride === 1 && g.channels(x) === channels) return x;
  if (o.shortcut === 'A') return g.padShortcut(x, { name: `${name}_pad`, stride, channels });
  if (o.avgDown) {
    const pooled = stride > 1 ? g.avgPoolCeil(x, { name: `${name}_pool`, size: 2, stride }) : x;
    return g.batchNorm(conv1x1(g, pooled, `${name}_conv`, channels), { name: `${name}_bn` });
  }
  return g.batchNorm(conv1x1(g, x, `${name}_conv`, channels, stride), { name: `${name}_bn` });
}

interface BlockArgs {
  name: string;
  planes: number;
  stride: number;
}

interface Block {
  /** Output channels per plane. */
  expansion: number;
  build<T>(g: Graph<T>, x: T, b: BlockArgs, o: ResNetOptions): T;
}

function finish<T>(g: Graph<T>, x: T, out: T, b: BlockArgs, channels: number, o: ResNetOptions): T {
  if (o.seReduction > 0) out = squeezeExcite(g, out, `${b.name}_se`, o.seReduction);
  const sum = g.add([out, shortcut(g, x, `${b.name}_downsample`, channels, b.stride, o)], `${b.name}_add`);
  return g.relu(sum, `${b.name}_out`);
}

export const basicBlock: Block = {
  expansion: 1,
  build(g, x, b, o) {
    let y = g.relu(g.batchNorm(conv3x3(g, x, `${b.name}_conv1`, b.planes, b.stride), { name: `${b.name}_bn1` }), `${b.name}_relu1`);
    y = g.batchNorm(conv3x3(g, y, `${b.name}_conv2`, b.planes), { name: `${b.name}_bn2`, zeroGamma: o.zeroInitLastBn });
    return finish(g, x, y, b, b.planes, o);
  },
};

export const bottleneck: Block = {
  expansion: 4,
  build(g, x, b, o) {
    const width = Math.floor(b.planes * (o.widthPerGroup / 64)) * o.cardinality;
    const out = b.planes * 4;
    let y = g.relu(g.batchNorm(conv1x1(g, x, `${b.name}_conv1`, width), { name: `${b.name}_bn1` }), `${b.name}_relu1`);
    y = g.relu(g.batchNorm(conv3x3(g, y, `${b.name}_conv2`, width, b.stride, o.cardinality), { name: `${b.name}_bn2` }), `${b.name}_relu2`);
    y = g.batchNorm(conv1x1(g, y, `${b.name}_conv3`, out), { name: `${b.name}_bn3`, zeroGamma: o.zeroInitLastBn });
    return finish(g, x, y, b, out, o);
  },
};

function stem<T>(g: Graph<T>, x: T, o: ResNetOptions): T {
  const bnRelu = (y: T, i: string) => g.relu(g.batchNorm(y, { name: `bn${i}` }), `relu${i}`);
  switch (o.stem) {
    case 'cifar':
      return bnRelu(conv3x3(g, x, 'conv1', o.stemWidth), '1');
    case 'imagenet':
      x = bnRelu(g.conv(x, { name: 'conv1', filters: o.stemWidth, kernel: 7, stride: 2, padding: 3 }), '1');
      return g.maxPool(x, { name: 'maxpool', size: 3, stride: 2, padding: 1 });
    case 'deep':
      x = bnRelu(conv3x3(g, x, 'stem_conv1', o.stemWidth, 2), '_stem1');
      x = bnRelu(conv3x3(g, x, 'stem_conv2', o.stemWidth), '_stem2');
      x = bnRelu(conv3x3(g, x, 'conv1', 2 * o.stemWidth), '1');
      return g.maxPool(x, { name: 'maxpool', size: 3, stride: 2, padding: 1 });
  }
}

export function validateResNet(o: ResNetOptions): void {
  assertOneOf('block', o.block, ['basic', 'bottleneck'] as const);
  assertOneOf('stem', o.stem, ['imagenet', 'deep', 'cifar'] as const);
  assertOneOf('shortcut', o.shortcut, ['A', 'B'] as const);
  for (const k of ['stemWidth', 'cardinality', 'widthPerGroup'] as const) assertPositiveInt(k, o[k]);
  if (!Number.isInteger(o.seReduction) || o.seReduction < 0) throw new ModelError('INVALID_OPTION', `option seReduction must be 0 (off) or a positive integer, got ${o.seReduction}`);
  if (!Array.isArray(o.layers) || o.layers.length === 0 || o.layers.length !== o.widths?.length) {
    throw new ModelError('INVALID_OPTION', `options layers and widths need one entry per stage, got ${JSON.stringify(o.layers)} and ${JSON.stringify(o.widths)}`);
  }
  o.layers.forEach((n, i) => assertPositiveInt(`layers[${i}]`, n));
  o.widths.forEach((n, i) => assertPositiveInt(`widths[${i}]`, n));
  if (o.block === 'basic' && (o.cardinality !== 1 || o.widthPerGroup !== 64)) {
    throw new ModelError('INVALID_OPTION', 'the basic block supports only cardinality 1 and widthPerGroup 64: use block "bottleneck" for ResNeXt and wide ResNets');
  }
  if (o.shortcut === 'A' && o.avgDown) throw new ModelError('INVALID_OPTION', 'avgDown applies to projection shortcuts: use shortcut "B" with avgDown');
}

/** The one ResNet: every variant is a set of options. */
export function resnet<T>(g: Graph<T>, o: ResNetOptions): T {
  const block = o.block === 'basic' ? basicBlock : bottleneck;
  // Sections: the stem, each block, the head. A pipeline cuts between them (one tensor crosses).
  g.section('stem');
  let x = stem(g, g.input(o.inputSize, 3), o);
  o.layers.forEach((blocks, stage) => {
    for (let i = 0; i < blocks; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const name = `layer${stage + 1}_${i}`;
      g.section(name);
      x = block.build(g, x, { name, planes: o.widths[stage], stride }, o);
    }
  });
  g.section('head');
  x = g.globalAvgPool(x, 'avgpool');
  return g.dense(x, { name: 'fc', units: o.numClasses });
}
