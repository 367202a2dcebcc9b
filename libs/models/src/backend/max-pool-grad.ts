import { tf } from './tf';
import { WasmBackend } from './heap';
import { fleetKernels, heapOffset } from './simd/fleet-kernels';
import { withOps } from './wasm-ops';

type KernelFunc = tf.KernelConfig['kernelFunc'];
interface PoolAttrs {
  filterSize: number | [number, number];
  strides: number | [number, number];
  pad: 'valid' | 'same' | number;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/**
 * MaxPoolGrad by the SIMD kernel (4 channels at a time, argmax by compare-and-select, dy
 * scattered onto the winners): the stock wasm kernel took ~5% of a ResNet-18 or AlexNet step
 * for its one to three pools, and disagrees with the cpu reference for some 'same' pools.
 * Channels are padded to a multiple of 4 when needed.
 */
export function maxPoolGradKernel(stock: KernelFunc): KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs as Record<string, tf.TensorInfo>;
    const b = args.backend as WasmBackend;
    const kernels = fleetKernels(b);
    if (!kernels || input.shape.length !== 4 || input.dtype !== 'float32' || dy.dtype !== 'float32') return stock(args);
    const a = args.attrs as unknown as PoolAttrs;
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number], a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode,
    );
    return withOps(b, (ops) => {
      const [n, h, w, c] = input.shape;
      const [x4, dy4] = [ops.padChannels(input, 4), ops.padChannels(dy, 4)];
      const c4 = x4.shape[3];
      const dx = ops.alloc([n, h, w, c4]);
      b.typedArrayFromHeap(dx).fill(0);
      kernels.max_pool_grad(
        heapOffset(b, x4), heapOffset(b, dy4), heapOffset(b, dx), n, h, w, c4, info.outHeight, info.outWidth,
        info.filterHeight, info.filterWidth, info.strideHeight, info.strideWidth, info.padInfo.top, info.padInfo.left,
      );
      return c4 === c ? dx : ops.slice(dx, [0, 0, 0, 0], [n, h, w, c]);
    });
  };
}
