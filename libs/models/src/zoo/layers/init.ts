import * as tf from '@tensorflow/tfjs';
import { Init } from '../graph';

/** A tfjs initializer for an `Init`; `seed` makes it reproducible across processes. */
export function makeInitializer(init: Init, seed?: number): tf.serialization.Serializable & { apply(shape: number[], dtype?: tf.DataType): tf.Tensor } {
  switch (init.dist) {
    case 'normal':
      return tf.initializers.randomNormal({ mean: 0, stddev: init.std, seed });
    case 'uniform':
      return tf.initializers.randomUniform({ minval: -init.limit, maxval: init.limit, seed });
    case 'constant':
      return init.value === 0 ? tf.initializers.zeros() : tf.initializers.constant({ value: init.value });
  }
}

export function isRandom(init: Init): boolean {
  return init.dist !== 'constant';
}
