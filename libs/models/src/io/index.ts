export * from './errors';
export * from './layers-export';
export * from './predict';
export * from './preprocess';
export * from './tensor-bytes';
