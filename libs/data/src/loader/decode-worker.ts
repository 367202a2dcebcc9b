import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { AugmentConfig, decodeAugment } from './augment';

// One libvips thread per worker: the pool size is the parallelism knob.
sharp.concurrency(1);
sharp.cache(false);

const { cfg, frames } = workerData as { cfg: AugmentConfig; frames: SharedArrayBuffer };
const frame = cfg.inputSize * cfg.inputSize * 3;
const all = new Float32Array(frames);

// Results go straight into the shared frame the caller named; the reply only says done.
parentPort!.on('message', (m: { id: number; bytes: Uint8Array; seed: number; frame: number }) => {
  decodeAugment(m.bytes, m.seed, cfg, all.subarray(m.frame * frame, (m.frame + 1) * frame)).then(
    () => parentPort!.postMessage({ id: m.id }),
    (err: Error) => parentPort!.postMessage({ id: m.id, error: err.message }),
  );
});
