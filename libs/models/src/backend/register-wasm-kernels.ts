import { tf } from './tf';
import { withOps } from './wasm-ops';
import { conv2dBackpropFilterNhwc, conv2dBackpropInputNhwc, conv2dInfo } from './conv-grad-kernels';
import { batchNormKernel, leadingReduceKernel, sharingIdentityKernel } from './reduce-kernels';
import { concatKernel, sliceKernel, splitKernel } from './layout-kernels';
import { matMulKernel } from './matmul-kernel';
import { BROADCAST_CHANNELS, broadcastChannelsKernel, fusedBatchNormGrad, meanGrad } from './batch-norm-grad';
import { BN_TRAINING, BN_TRAINING_GRAD, batchNormTrainingGrad, batchNormTrainingGradKernel, batchNormTrainingKernel } from './batch-norm-training';
import { RELU_GRAD, reluGrad, reluGradKernel } from './relu-grad';
import { maxPoolGradKernel } from './max-pool-grad';
import { conv3x3Winograd, winogradApplies, winogradPaysOff } from './winograd-conv';

type KernelFunc = tf.KernelConfig['kernelFunc'];
type Attrs = {
  strides: [number, number] | number;
  pad: unknown;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: unknown;
};

/**
 * 'all': every kernel and gradient below. 'minimal': only Conv2DBackpropFilter, which the
 * stock backend lacks and cannot train without (the baseline for benchmarks).
 */
export type WasmKernelSet = 'all' | 'minimal';

let registered: WasmKernelSet | null = null;

/** Registers this project's kernels on the wasm backend (idempotent; 'all' supersedes 'minimal'). */
export function registerWasmKernels(set: WasmKernelSet = 'all'): void {
  if (registered === 'all' || registered === set) return;
  if (!registered) registerFilterGradient();
  registered = set;
  if (set === 'minimal') return;
  const stockInput = tf.getKernel(tf.Conv2DBackpropInput, 'wasm')?.kernelFunc;
  override(tf.Conv2DBackpropInput, (args) => {
    const { dy, filter } = args.inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
    const a = args.attrs as unknown as Attrs & { inputShape: number[] };
    if (a.dataFormat === 'NCHW' && stockInput) return stockInput(args);
    return withOps(args.backend, (ops) => conv2dBackpropInputNhwc(ops, dy, filter, conv2dInfo(a.inputShape, filter.shape, a)));
  });
  const stock = (name: string) => tf.getKernel(name, 'wasm')?.kernelFunc;
  override(tf.Conv2D, winogradForward(must(stock(tf.Conv2D), tf.Conv2D)));
  override(tf.FusedConv2D, winogradForward(must(stock(tf.FusedConv2D), tf.FusedConv2D)));
  override(tf.Sum, leadingReduceKernel(false, stock(tf.Sum)));
  override(tf.Mean, leadingReduceKernel(true, stock(tf.Mean)));
  override(tf.Identity, sharingIdentityKernel(stock(tf.Identity)));
  override(tf.Cast, sharingIdentityKernel(stock(tf.Cast)));
  override(tf.FusedBatchNorm, batchNormKernel(stock(tf.FusedBatchNorm)));
  override(tf.BatchMatMul, matMulKernel(must(stock(tf.BatchMatMul), tf.BatchMatMul)));
  override(tf.Slice, sliceKernel(must(stock(tf.Slice), tf.Slice)));
  override(tf.SplitV, splitKernel(must(stock(tf.SplitV), tf.SplitV)));
  override(tf.Concat, concatKernel(must(stock(tf.Concat), tf.Concat)));
  override(BROADCAST_CHANNELS, broadcastChannelsKernel);
  override(BN_TRAINING, batchNormTrainingKernel);
  override(BN_TRAINING_GRAD, batchNormTrainingGradKernel);
  override(RELU_GRAD, reluGradKernel);
  override(tf.MaxPoolGrad, maxPoolGradKernel(must(stock(tf.MaxPoolGrad), tf.MaxPoolGrad)));
  // Gradients are global; on other backends these delegate to the stock ones.
  tf.registerGradient(fusedBatchNormGrad(mustGradient(tf.FusedBatchNorm)));
  tf.registerGradient(meanGrad(mustGradient(tf.Mean)));
  tf.registerGradient(reluGrad(mustGradient(tf.Relu)));
  tf.registerGradient(batchNormTrainingGrad);
}

function registerFilterGradient(): void {
  override(tf.Conv2DBackpropFilter, ({ inputs, backend, attrs }) => {
    const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
    const a = attrs as unknown as Attrs & { filterShape: number[] };
    if (a.dataFormat === 'NCHW') throw new Error('wasm Conv2DBackpropFilter supports NHWC only; use channelsLast');
    return withOps(backend, (ops) => conv2dBackpropFilterNhwc(ops, x, dy, conv2dInfo(x.shape, a.filterShape, a)));
  });
}

/**
 * Conv2D, and FusedConv2D without bias or activation, by Winograd when 3×3 stride 1 (most of
 * a ResNet's multiply-adds); everything else (and NCHW) stays on XNNPACK.
 */
function winogradForward(stockConv: KernelFunc): KernelFunc {
  return (args) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const a = args.attrs as unknown as Attrs & { dilations?: number | [number, number]; activation?: string };
    const plain = !bias && !preluActivationWeights && (a.activation ?? 'linear') === 'linear';
    if (!plain || a.dataFormat === 'NCHW' || !x || !filter) return stockConv(args);
    const info = conv2dInfo(x.shape, filter.shape, a);
    if (!winogradApplies(info) || !winogradPaysOff(info.inChannels)) return stockConv(args);
    const out = { height: info.outHeight, width: info.outWidth, padTop: info.padInfo.top, padLeft: info.padInfo.left };
    return withOps(args.backend, (ops) => conv3x3Winograd(ops, x, filter, out) ?? (stockConv(args) as tf.TensorInfo));
  };
}

function must(k: KernelFunc | undefined, name: string): KernelFunc {
  if (!k) throw new Error(`wasm backend has no ${name} kernel; expected @tensorflow/tfjs-backend-wasm 4.x`);
  return k;
}

function mustGradient(kernelName: string): tf.GradConfig {
  const g = tf.getGradient(kernelName);
  if (!g) throw new Error(`tfjs has no gradient for ${kernelName}; expected @tensorflow/tfjs 4.x`);
  return g;
}

function override(kernelName: string, kernelFunc: KernelFunc): void {
  const stock = tf.getKernel(kernelName, 'wasm');
  if (stock) tf.unregisterKernel(kernelName, 'wasm');
  // The stock setupFunc binds the wasm exports our fallbacks still call.
  tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc, setupFunc: stock?.setupFunc });
}
