import * as tf from '@tensorflow/tfjs';

/** The one @tensorflow/tfjs instance every package uses (kernels and backends register on it). */
export { tf };
