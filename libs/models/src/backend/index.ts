export * from './tf';
export * from './errors';
export * from './init-backend';
export * from './register-wasm-kernels';
export { FleetBatchNormalization, BatchNormDeferral, batchNormalization, deferBatchNormStats } from './batch-norm-layer';
export { RecordedForward, recordForward, SplitBackward } from './split-backward';
