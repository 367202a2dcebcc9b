import * as tf from '@tensorflow/tfjs';
import { ModelError } from './errors';
import { describeModel } from './registry';

const size = (shape: readonly (number | null)[]) => shape.reduce<number>((a, d) => a * (d ?? 1), 1);

/** Trainable parameters of a built model, or of a registered one from its configs (no weights). */
export function countParams(model: tf.LayersModel | string, opts: Record<string, unknown> = {}): number {
  if (typeof model === 'string') return describeModel(model, opts).params;
  return model.trainableWeights.reduce((s, w) => s + size(w.shape), 0);
}

/**
 * Multiply-adds per image of convolutions (Hout·Wout·Cout·kh·kw·Cin/groups) and dense layers
 * (in·out), as torchvision reports. A built model is counted at its own input size.
 */
export function countMacs(model: tf.LayersModel | string, inputSize?: number): number {
  if (typeof model === 'string') return describeModel(model, inputSize === undefined ? {} : { inputSize }).macs;
  const built = model.inputs[0].shape[1];
  if (inputSize !== undefined && inputSize !== built) {
    throw new ModelError('INVALID_OPTION', `model ${model.name} was built for input ${built}, not ${inputSize}: count by name, countMacs('${model.name}', ${inputSize})`);
  }
  let macs = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls !== 'Conv2D' && cls !== 'GroupedConv2D' && cls !== 'DepthwiseConv2D' && cls !== 'Dense') continue;
    const inShape = (layer.inputSpec?.[0]?.shape ?? (layer.input as tf.SymbolicTensor).shape) as number[];
    const outShape = (layer.output as tf.SymbolicTensor).shape as number[];
    const config = layer.getConfig();
    const cin = inShape[inShape.length - 1];
    const cout = outShape[outShape.length - 1];
    if (cls === 'Dense') {
      macs += size(outShape.slice(1, -1)) * cin * cout;
      continue;
    }
    const k = config.kernelSize as number | number[];
    const [kh, kw] = Array.isArray(k) ? k : [k, k];
    const perOut = cls === 'DepthwiseConv2D' ? kh * kw : (kh * kw * cin) / ((config.groups as number) ?? 1);
    macs += outShape[1] * outShape[2] * cout * perOut;
  }
  return macs;
}
