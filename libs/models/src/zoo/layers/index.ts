import * as tf from '@tensorflow/tfjs';
import { AdaptiveAvgPool2D } from './adaptive-avg-pool';
import { GroupedConv2D } from './grouped-conv2d';
import { LocalResponseNorm } from './lrn';
import { PadShortcut } from './pad-shortcut';

export * from './adaptive-avg-pool';
export * from './grouped-conv2d';
export * from './init';
export * from './lrn';
export * from './pad-shortcut';

// Registered on import so that tf.loadLayersModel can open exported zoo models: a caller must
// import @tensorfleet/models before loading one.
for (const cls of [GroupedConv2D, LocalResponseNorm, AdaptiveAvgPool2D, PadShortcut]) {
  tf.serialization.registerClass(cls as never);
}
