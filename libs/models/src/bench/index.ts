export * from './train-bench';
export * from './cli';
export * from './pytorch-step';
