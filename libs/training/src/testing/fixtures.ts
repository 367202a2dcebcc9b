import { tf } from '@tensorfleet/models';
import { TrainBatch } from '../trainer/trainer';

/** Deterministic uniform [0, 1) generator (mulberry32), for test data only. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBatch(seed: number, size: number, shape: number[], numClasses: number): TrainBatch {
  const r = rng(seed);
  const per = shape.reduce((a, b) => a * b, 1);
  const images = new Float32Array(size * per).map(() => r() * 2 - 1);
  const labels = new Int32Array(size).map(() => Math.floor(r() * numClasses));
  return { images, labels, size };
}

/** Samples [from, to) of a batch. */
export function sliceBatch(b: TrainBatch, from: number, to: number): TrainBatch {
  const per = b.images.length / b.size;
  return { images: b.images.slice(from * per, to * per), labels: b.labels.slice(from, to), size: to - from };
}

/** Conv → BN → ReLU → global pool → dense; named layers and seeded initializers, so two builds are identical. */
export function tinyConvNet(seed: number, numClasses = 5, inputShape: [number, number, number] = [8, 8, 3]): tf.LayersModel {
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ name: 'conv', inputShape, filters: 4, kernelSize: 3, padding: 'same', useBias: false, kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.batchNormalization({ name: 'bn', momentum: 0.9 }),
      tf.layers.activation({ name: 'relu', activation: 'relu' }),
      tf.layers.globalAveragePooling2d({ name: 'pool' }),
      tf.layers.dense({ name: 'fc', units: numClasses, kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }), biasInitializer: tf.initializers.randomUniform({ minval: -0.1, maxval: 0.1, seed: seed + 2 }) }),
    ],
  });
}

export function weightsOf(model: tf.LayersModel): Float32Array[] {
  return model.weights.map((w) => new Float32Array(w.read().dataSync() as Float32Array));
}
