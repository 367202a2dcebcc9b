import { tf } from './tf';
import { registerWasmKernels } from './register-wasm-kernels';
import { DnnlAddon } from './onednn-addon';
import { onednnConv2d, onednnConv2dBackpropFilter, onednnConv2dBackpropInput } from './onednn-kernels';
import { onednnMatMul } from './onednn-matmul';
import { onednnBatchNormTraining, onednnBatchNormTrainingGrad, onednnFusedBatchNorm } from './onednn-batch-norm';
import { BN_TRAINING, BN_TRAINING_GRAD } from './batch-norm-training';
import { onednnMean, onednnPool, onednnPoolGrad } from './onednn-pooling';

/**
 * The `onednn` tfjs backend: the wasm backend's instance (its heap, its tensors) under a second
 * name whose kernel table is wasm's with this project's kernels, and the convolutions and
 * matrix products, batch norm and pooling replaced by oneDNN's. Sharing the instance means no data moves when a
 * process switches between `wasm` and `onednn` (the benchmark and the specs do), and every
 * kernel oneDNN doesn't cover (element-wise ops, reductions, the optimizer) is the wasm one unchanged.
 */
export const ONEDNN = 'onednn';

/** Kernels oneDNN runs on this backend; the rest of the table is wasm's. */
export const ONEDNN_KERNELS = [
  tf.Conv2D, tf.FusedConv2D, tf.Conv2DBackpropInput, tf.Conv2DBackpropFilter, tf.BatchMatMul, tf._FusedMatMul,
  BN_TRAINING, BN_TRAINING_GRAD, tf.FusedBatchNorm, tf.MaxPool, tf.AvgPool, tf.MaxPoolGrad, tf.AvgPoolGrad, tf.Mean,
];

let registered = false;

/** Registers the backend (idempotent); tf.setBackend('wasm') must have succeeded first. */
export function registerOnednnBackend(addon: DnnlAddon): void {
  if (registered) return;
  registerWasmKernels('all');
  const wasmKernels = tf.getKernelsForBackend('wasm');
  const wasm = (name: string) => {
    const k = wasmKernels.find((c) => c.kernelName === name);
    if (!k) throw new Error(`wasm backend has no ${name} kernel; expected @tensorflow/tfjs-backend-wasm 4.x`);
    return k.kernelFunc;
  };
  const native: Record<string, tf.KernelConfig['kernelFunc']> = {
    [tf.Conv2D]: onednnConv2d(addon, tf.Conv2D, wasm(tf.Conv2D)),
    [tf.FusedConv2D]: onednnConv2d(addon, tf.FusedConv2D, wasm(tf.FusedConv2D)),
    [tf.Conv2DBackpropInput]: onednnConv2dBackpropInput(addon, wasm(tf.Conv2DBackpropInput)),
    [tf.Conv2DBackpropFilter]: onednnConv2dBackpropFilter(addon, wasm(tf.Conv2DBackpropFilter)),
    [tf.BatchMatMul]: onednnMatMul(addon, false, wasm(tf.BatchMatMul)),
    [tf._FusedMatMul]: onednnMatMul(addon, true, wasm(tf._FusedMatMul)),
    [BN_TRAINING]: onednnBatchNormTraining(addon, wasm(BN_TRAINING)),
    [BN_TRAINING_GRAD]: onednnBatchNormTrainingGrad(addon, wasm(BN_TRAINING_GRAD)),
    [tf.FusedBatchNorm]: onednnFusedBatchNorm(addon, wasm(tf.FusedBatchNorm)),
    [tf.MaxPool]: onednnPool(addon, true, wasm(tf.MaxPool)),
    [tf.AvgPool]: onednnPool(addon, false, wasm(tf.AvgPool)),
    [tf.MaxPoolGrad]: onednnPoolGrad(addon, true, wasm(tf.MaxPoolGrad)),
    [tf.AvgPoolGrad]: onednnPoolGrad(addon, false, wasm(tf.AvgPoolGrad)),
    [tf.Mean]: onednnMean(addon, wasm(tf.Mean)),
  };
  for (const k of wasmKernels) {
    // The stock setupFunc binds the wasm exports the fallbacks call (same instance, same module).
    tf.registerKernel({ ...k, backendName: ONEDNN, kernelFunc: native[k.kernelName] ?? k.kernelFunc });
  }
  const instance = tf.engine().findBackend('wasm');
  if (!instance) throw new Error(`the ${ONEDNN} backend shares the wasm backend's instance; initialise wasm first`);
  tf.registerBackend(ONEDNN, () => instance, 1);
  registered = true;
}
