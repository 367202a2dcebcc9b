import { tf } from './tf';
import { WasmBackend, onWasmHeap } from './heap';
import { fleetKernels, heapOffset } from './simd/fleet-kernels';

/** Kernel: dx = x > 0 ? dy : 0 (ReLU's gradient in one pass; stock: Step, then Multiply). */
export const RELU_GRAD = 'FleetReluGrad';

export const reluGradKernel: tf.KernelConfig['kernelFunc'] = ({ inputs, backend }) => {
  const { dy, x } = inputs as Record<string, tf.TensorInfo>;
  const b = backend as WasmBackend;
  const kernels = fleetKernels(b);
  if (!kernels) throw new Error(`${RELU_GRAD}: the SIMD kernels can't reach this wasm backend's memory`);
  const dx = b.makeOutput(x.shape, 'float32');
  const n = tf.util.sizeFromShape(x.shape);
  const n4 = n >> 2;
  kernels.relu_grad(heapOffset(b, dy), heapOffset(b, x), heapOffset(b, dx), n4);
  if (n4 * 4 < n) {
    const [dyv, xv, dxv] = [dy, x, dx].map((t) => b.typedArrayFromHeap(t));
    for (let i = n4 * 4; i < n; i++) dxv[i] = xv[i] > 0 ? dyv[i] : 0;
  }
  return dx;
};

/** Relu's gradient through RELU_GRAD on wasm; other backends (and int tensors) keep the stock one. */
export function reluGrad(stock: tf.GradConfig): tf.GradConfig {
  return {
    ...stock,
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved as tf.Tensor[];
      const d = dy as tf.Tensor;
      if (!onWasmHeap() || x.dtype !== 'float32' || d.dtype !== 'float32' || !fleetKernels(tf.backend())) {
        return stock.gradFunc(dy, saved, attrs);
      }
      return { x: () => tf.engine().runKernel(RELU_GRAD, { dy: d, x }) as tf.Tensor };
    },
  };
}
