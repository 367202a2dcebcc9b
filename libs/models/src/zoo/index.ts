import './models';

export * from './alexnet';
export * from './counts';
export * from './errors';
export * from './format';
export * from './graph';
export * from './layers';
export { resnetBuilder, alexnetBuilder } from './models';
export * from './options';
export * from './registry';
export * from './resnet';
export * from './shape-graph';
export * from './tf-graph';
