export * from './tf';
export * from './errors';
export * from './init-backend';
export * from './register-wasm-kernels';
export { FleetConv2D, conv2d } from './conv2d-layer';
export { FleetBatchNormalization, BatchNormDeferral, batchNormalization, deferBatchNormStats } from './batch-norm-layer';
export { RecordedForward, recordForward, SplitBackward } from './split-backward';
export { accumulateInto, soleHeapView } from './heap';
export { nativeSgdStep } from './onednn-addon';
