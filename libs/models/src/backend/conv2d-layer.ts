import { tf } from './tf';

type Conv2DArgs = Parameters<typeof tf.layers.conv2d>[0];
/** The fields of tfjs-layers' Conv2D this subclass reads. */
interface Conv2DLayer extends tf.layers.Layer {
  kernel: { read(): tf.Tensor };
  bias: { read(): tf.Tensor } | null;
  strides: number[];
  padding: string;
  dataFormat: string;
  dilationRate: number[];
  activation: { getClassName(): string };
}

function conv2dClass(): new (args: Conv2DArgs) => Conv2DLayer {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap.Conv2D;
  if (!entry) throw new Error('tfjs-layers has not registered Conv2D; expected @tensorflow/tfjs 4.x');
  return entry[0] as unknown as new (args: Conv2DArgs) => Conv2DLayer;
}

interface FusedConvAttrs {
  strides: [number, number];
  pad: 'same' | 'valid';
  dataFormat: 'NHWC';
  dilations: [number, number];
  dimRoundingMode?: undefined;
  activation: 'linear' | 'relu';
}

/**
 * A gradient for the FusedConv2D kernel whose parts are computed only when asked for. tfjs's
 * tf.fused.conv2d records a customGrad that computes dx, dW and db eagerly, so the layer
 * reading the input image computed the gradient with respect to the image although nothing
 * uses it (AlexNet's 11×11 stride-4 first layer: 111 ms of a 0.9 s step). Through this
 * gradient the tape prunes it: the image is no variable and comes from none.
 */
export const fusedConv2dGrad: tf.GradConfig = {
  kernelName: tf.FusedConv2D,
  inputsToSave: ['x', 'filter'],
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter, y] = saved as tf.Tensor4D[];
    const a = attrs as unknown as FusedConvAttrs;
    if (a.dataFormat !== 'NHWC' || a.dilations.some((d) => d !== 1)) throw new Error('FusedConv2D gradient: NHWC and undilated only');
    const conv = { strides: a.strides, pad: a.pad, dataFormat: 'NHWC', dimRoundingMode: a.dimRoundingMode };
    // ReLU's gradient through its output, as tf.fused.conv2d's: dy where y > 0.
    const g = () => (a.activation === 'relu' ? tf.mul(dy as tf.Tensor, tf.step(y)) : (dy as tf.Tensor));
    return {
      x: () => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: g(), filter }, { ...conv, inputShape: x.shape } as never) as tf.Tensor,
      filter: () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: g() }, { ...conv, filterShape: filter.shape } as never) as tf.Tensor,
      bias: () => tf.sum(g(), [0, 1, 2]),
    };
  },
};

let gradientRegistered = false;

/**
 * tfjs-layers' Conv2D whose 2-D NHWC, undilated, linear or ReLU case runs the FusedConv2D
 * kernel under fusedConv2dGrad (same kernels, same arithmetic as tf.fused.conv2d), so a
 * gradient nobody needs (the input image's) is never computed. Everything else is the stock
 * layer. It serialises as 'Conv2D', so saved models load into the stock class.
 */
export class FleetConv2D extends conv2dClass() {
  static className = 'Conv2D';

  constructor(args: Conv2DArgs) {
    super(args);
    if (!gradientRegistered) {
      tf.registerGradient(fusedConv2dGrad);
      gradientRegistered = true;
    }
  }

  override call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[] {
    const x = Array.isArray(inputs) ? inputs[0] : inputs;
    const activation = this.activation.getClassName();
    const plain = x.rank === 4 && this.dataFormat === 'channelsLast' && this.dilationRate.every((d) => d === 1);
    if (!plain || (activation !== 'linear' && activation !== 'relu') || (this.padding !== 'same' && this.padding !== 'valid')) {
      return super.call(inputs, kwargs);
    }
    return tf.tidy(() => {
      const attrs: FusedConvAttrs = {
        strides: this.strides as [number, number], pad: this.padding as 'same' | 'valid', dataFormat: 'NHWC',
        dilations: [1, 1], dimRoundingMode: undefined, activation,
      };
      const filter = this.kernel.read();
      const ins: tf.NamedTensorMap = this.bias ? { x, filter, bias: this.bias.read() } : { x, filter };
      return tf.engine().runKernel(tf.FusedConv2D, ins, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
    });
  }
}

/** Same arguments as tf.layers.conv2d. */
export function conv2d(args: Conv2DArgs): tf.layers.Layer {
  return new FleetConv2D(args);
}
