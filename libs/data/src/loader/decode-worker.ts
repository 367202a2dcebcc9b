import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { AugmentConfig, decodeAugment } from './augment';

// One libvips thread per worker: the pool size is the parallelism knob.
sharp.concurrency(1);
sharp.cache(false);

const cfg = workerData as AugmentConfig;

parentPort!.on('message', (m: { id: number; bytes: Uint8Array; seed: number }) => {
  decodeAugment(m.bytes, m.seed, cfg).then(
    (data) => parentPort!.postMessage({ id: m.id, data }, [data.buffer as ArrayBuffer]),
    (err: Error) => parentPort!.postMessage({ id: m.id, error: err.message }),
  );
});
