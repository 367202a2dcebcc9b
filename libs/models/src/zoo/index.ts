/**
 * The model zoo. `createModel('resnet50', { numClasses, inputSize, seed })` builds a tfjs layers
 * model whose output is logits; `listModels()` / `describeModel()` give parameters and
 * multiply-adds from the layer configs without allocating weights. Every ResNet variant is
 * options of `resnet()`; `registerModel(name, resnetBuilder, { ...variant, description })` adds one.
 * Importing this module registers the custom layers, which tf.loadLayersModel needs.
 */
import './models';

export * from './alexnet';
export * from './counts';
export * from './errors';
export * from './format';
export * from './graph';
export * from './layers';
export { resnetBuilder, alexnetBuilder } from './models';
export * from './options';
export * from './partition';
export * from './registry';
export * from './resnet';
export * from './shape-graph';
export * from './tf-graph';
