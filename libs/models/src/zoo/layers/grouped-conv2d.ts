import * as tf from '@tensorflow/tfjs';
import { Init } from '../graph';
import { makeInitializer } from './init';

export interface GroupedConv2DArgs {
  name?: string;
  filters: number;
  kernelSize: number;
  /** Default 1. */
  strides?: number;
  /** Default 'valid'. */
  padding?: 'valid' | 'same';
  groups: number;
  /** Default false. */
  useBias?: boolean;
  kernelInit: Init;
  biasInit?: Init;
  kernelSeed?: number;
  biasSeed?: number;
  trainable?: boolean;
}

/**
 * Convolution in `groups` independent channel groups (ResNeXt; the AlexNet columns), which
 * tfjs-layers lacks: split the input channels, one conv per group, concatenate. The kernel is
 * one [k, k, cin/groups, filters] variable; group g owns output channels [g·f/G, (g+1)·f/G).
 */
export class GroupedConv2D extends tf.layers.Layer {
  static readonly className = 'GroupedConv2D';
  private readonly args: GroupedConv2DArgs;
  private kernel: tf.LayerVariable | null = null;
  private bias: tf.LayerVariable | null = null;

  constructor(args: GroupedConv2DArgs) {
    super({ name: args.name, trainable: args.trainable });
    if (!(args.groups >= 1) || args.filters % args.groups !== 0) {
      throw new Error(`GroupedConv2D ${args.name}: filters (${args.filters}) must be a multiple of groups (${args.groups})`);
    }
    this.args = { strides: 1, padding: 'valid', useBias: false, ...args };
  }

  override build(inputShape: tf.Shape | tf.Shape[]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const cin = shape[3] as number;
    const { groups, kernelSize: k, filters } = this.args;
    if (cin % groups !== 0) throw new Error(`GroupedConv2D ${this.name}: ${cin} input channels do not split into ${groups} groups`);
    this.kernel = this.addWeight('kernel', [k, k, cin / groups, filters], 'float32', makeInitializer(this.args.kernelInit, this.args.kernelSeed) as never);
    if (this.args.useBias) {
      this.bias = this.addWeight('bias', [filters], 'float32', makeInitializer(this.args.biasInit ?? { dist: 'constant', value: 0 }, this.args.biasSeed) as never);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: tf.Shape | tf.Shape[]): tf.Shape {
    const [n, h, w] = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as tf.Shape;
    const { kernelSize: k, strides: s, padding, filters } = this.args as Required<GroupedConv2DArgs>;
    const out = (d: number | null) => (d == null ? null : padding === 'same' ? Math.ceil(d / s) : Math.floor((d - k) / s) + 1);
    return [n, out(h), out(w), filters];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = (Array.isArray(inputs) ? inputs[0] : inputs) as tf.Tensor4D;
      const { groups, strides, padding } = this.args as Required<GroupedConv2DArgs>;
      const kernel = this.kernel!.read() as tf.Tensor4D;
      let y: tf.Tensor4D;
      if (groups === 1) {
        y = tf.conv2d(x, kernel, strides, padding);
      } else {
        const xs = tf.split(x, groups, 3) as tf.Tensor4D[];
        const ks = tf.split(kernel, groups, 3) as tf.Tensor4D[];
        y = tf.concat(xs.map((xg, g) => tf.conv2d(xg, ks[g], strides, padding)), 3);
      }
      return this.bias ? tf.add(y, this.bias.read()) : y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const { name: _name, trainable: _trainable, ...rest } = this.args;
    return { ...super.getConfig(), ...(rest as unknown as tf.serialization.ConfigDict) };
  }
}
