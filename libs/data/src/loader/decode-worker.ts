import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { AugmentConfig, cropsPerImage, decodeAugment } from './augment';
import { threadCpuSeconds } from './thread-cpu';
import type { WorkerRequest, WorkerReply } from './decode-pool';

// One libvips thread per call and no operation cache: the pool size is the parallelism knob, and
// every image is decoded once, so caching only costs memory and lookups.
sharp.concurrency(1);
sharp.cache(false);

const { cfg, frames } = workerData as { cfg: AugmentConfig; frames: SharedArrayBuffer };
const frame = cropsPerImage(cfg.pipeline) * cfg.inputSize * cfg.inputSize * 3;
const all = new Float32Array(frames);
const reply = (m: WorkerReply) => parentPort!.postMessage(m);

// Results go straight into the shared frame the caller named; the reply only says done.
parentPort!.on('message', (m: WorkerRequest) => {
  if (m.type === 'cpu') return reply({ id: m.id, cpuSeconds: threadCpuSeconds() ?? undefined });
  decodeAugment(m.bytes, m.seed, cfg, all.subarray(m.frame * frame, (m.frame + 1) * frame)).then(
    () => reply({ id: m.id }),
    (err: Error) => reply({ id: m.id, error: err.message }),
  );
});
