export * from './train-bench';
export * from './cli';
