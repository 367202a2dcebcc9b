export * from './tf';
export * from './errors';
export * from './init-backend';
export * from './register-wasm-kernels';
export { FleetBatchNormalization, batchNormalization } from './batch-norm-layer';
