import { DEFAULT_BUCKET_BYTES } from '../bucketing';

/**
 * The α-β model of a link (Hockney): sending m bytes costs α + m·β. Collective costs below
 * are Thakur, Rabenseifner & Gropp's (2005) ring formulas built on it.
 */
export interface LinkCost {
  /** Latency per message (per ring step), seconds. */
  alpha: number;
  /** Seconds per byte (1 / bandwidth). */
  beta: number;
}

/** One measured all-reduce: world size, fp32 bytes reduced, mean time in seconds. */
export interface AllreduceSample {
  worldSize: number;
  bytes: number;
  seconds: number;
}

/**
 * Least-squares α and β of a flat ring from all-reduce timings:
 * T = 2(p-1)·α + 2(p-1)/p·n·β (reduce-scatter then all-gather, p-1 steps each).
 * Both are clamped at >= 0 (a negative intercept means latency below the noise).
 */
export function fitRing(samples: readonly AllreduceSample[]): LinkCost & { rmsRelError: number } {
  if (samples.length < 2) throw new RangeError(`fitRing needs at least 2 timings, got ${samples.length}`);
  const rows = samples.map((s) => [2 * (s.worldSize - 1), (2 * (s.worldSize - 1) * s.bytes) / s.worldSize, s.seconds]);
  // Relative errors matter (sizes span 1000x): weight each row by 1/T².
  let saa = 0; let sab = 0; let sbb = 0; let sat = 0; let sbt = 0;
  for (const [a, b, t] of rows) {
    const w = 1 / (t * t);
    saa += w * a * a; sab += w * a * b; sbb += w * b * b; sat += w * a * t; sbt += w * b * t;
  }
  const det = saa * sbb - sab * sab;
  let alpha = det ? (sat * sbb - sbt * sab) / det : 0;
  let beta = det ? (saa * sbt - sab * sat) / det : 0;
  if (alpha < 0 || !Number.isFinite(alpha)) {
    alpha = 0;
    beta = sbt / sbb;
  }
  if (beta < 0) beta = 0;
  const fit = { alpha, beta };
  const rel = samples.map((s) => ringAllreduce(s.worldSize, s.bytes, fit) / s.seconds - 1);
  return { ...fit, rmsRelError: Math.sqrt(rel.reduce((x, e) => x + e * e, 0) / rel.length) };
}

/** Flat ring all-reduce of n bytes over p ranks whose slowest link is `link`, seconds. */
export function ringAllreduce(p: number, bytes: number, link: LinkCost): number {
  if (p <= 1) return 0;
  return 2 * (p - 1) * link.alpha + ((2 * (p - 1)) / p) * bytes * link.beta;
}

/**
 * The pipelined hierarchical all-reduce of libs/collective (hierarchical.ts): C chunks of
 * `chunkBytes`; per chunk a reduce-scatter within the host (L ranks, intra link), L concurrent
 * rings of H ranks over 1/L of the chunk each, and an all-gather within the host. With one
 * link per host (`rails` 1) the L rings share it, so it carries 2(H-1)/H of the chunk; with
 * `rails` links per host (the ring of local rank l on link l mod rails) the busiest carries
 * ceil(L/rails) of the L rings. The three stages overlap across chunks, so the time is the
 * slowest stage over all chunks plus the other two for one chunk (filling and draining the
 * pipeline).
 */
/**
 * How many of a host's L cross-host rings share its busiest link when the ring of local rank l
 * runs on link l mod rails (rails beyond L carry nothing).
 */
export function ringsOnBusiestRail(localRanks: number, rails: number): number {
  return Math.ceil(localRanks / Math.min(rails, localRanks));
}

export function hierarchicalAllreduce(hosts: number, localRanks: number, bytes: number, intra: LinkCost, inter: LinkCost, chunkBytes = 2 << 20, rails = 1): number {
  const L = localRanks;
  const H = hosts;
  if (!Number.isInteger(rails) || rails < 1) throw new RangeError(`rails must be a positive integer, got ${rails}`);
  const C = Math.max(1, Math.ceil(bytes / chunkBytes));
  const c = bytes / C;
  // reduce-scatter and all-gather: (L-1) steps of 1/L of the chunk each
  const half = L <= 1 ? 0 : (L - 1) * intra.alpha + ((L - 1) / L) * c * intra.beta;
  const cross = H <= 1 ? 0 : 2 * (H - 1) * inter.alpha + ((2 * (H - 1)) / H) * c * (ringsOnBusiestRail(L, rails) / L) * inter.beta;
  const stages = [half, cross, half];
  const slowest = Math.max(...stages);
  return C * slowest + stages.reduce((a, t) => a + t, 0) - slowest;
}

export interface StepModelOptions {
  /** GPUs in all. */
  gpus: number;
  /** GPUs per host (ipc/NVLink within, the network between). */
  gpusPerHost: number;
  /** Compute time of one step on one GPU (forward + backward + update), seconds. */
  computeSec: number;
  /** Share of the compute that is the backward pass, which gradient all-reduce can overlap. Default 2/3. */
  backwardShare?: number;
  /** Gradient bytes per step (fp32). */
  gradientBytes: number;
  /** Bucket size (DDP's bucket_cap_mb, this library's DEFAULT_BUCKET_BYTES). */
  bucketBytes?: number;
  intra: LinkCost;
  inter: LinkCost;
  /** Inter-host links per host, each of `inter` (one per GPU on rail-optimised clusters). Default 1. */
  rails?: number;
  /** 'ring': one flat ring over all GPUs; 'hierarchical': the pipelined hierarchical all-reduce. Default the faster. */
  algorithm?: 'ring' | 'hierarchical';
}

export interface StepPrediction {
  gpus: number;
  hosts: number;
  algorithm: 'ring' | 'hierarchical';
  buckets: number;
  /** All-reduce time of every bucket, one after another, seconds. */
  commSec: number;
  /** Communication not hidden behind the backward pass, seconds. */
  exposedSec: number;
  stepSec: number;
  /** computeSec / stepSec: weak scaling, the per-GPU batch held constant. */
  efficiency: number;
}

/**
 * Step time of data parallelism with bucketed gradient all-reduce overlapped with the
 * backward pass (as DDP and Horovod's tensor fusion do): buckets become ready during the
 * backward pass and are reduced one after another, so what is exposed is the communication
 * that does not fit in the backward pass after the first bucket is ready, and at least the
 * last bucket's all-reduce (its gradients are ready only when the backward pass ends).
 */
export function predictStep(o: StepModelOptions): StepPrediction {
  const bucketBytes = o.bucketBytes ?? DEFAULT_BUCKET_BYTES;
  const backward = o.computeSec * (o.backwardShare ?? 2 / 3);
  const hosts = Math.ceil(o.gpus / o.gpusPerHost);
  const local = Math.min(o.gpus, o.gpusPerHost);
  const nBuckets = Math.max(1, Math.ceil(o.gradientBytes / bucketBytes));
  const sizes = Array.from({ length: nBuckets }, (_, i) => Math.min(bucketBytes, o.gradientBytes - i * bucketBytes));
  const cost = (alg: 'ring' | 'hierarchical', b: number) => {
    if (hosts === 1) return ringAllreduce(local, b, o.intra);
    // A flat ring crossing hosts runs at its slowest link: the inter-host one.
    return alg === 'ring' ? ringAllreduce(o.gpus, b, { alpha: Math.max(o.intra.alpha, o.inter.alpha), beta: Math.max(o.intra.beta, o.inter.beta) })
      : hierarchicalAllreduce(hosts, local, b, o.intra, o.inter, undefined, o.rails ?? 1);
  };
  const one = (alg: 'ring' | 'hierarchical') => {
    const times = sizes.map((b) => cost(alg, b));
    const comm = times.reduce((a, t) => a + t, 0);
    // The first bucket is ready after 1/nBuckets of the backward pass; the rest of the backward hides communication.
    const hidden = backward * (1 - 1 / nBuckets);
    const exposed = Math.max(times[times.length - 1], comm - hidden);
    return { alg, comm, exposed };
  };
  const choices = o.algorithm ? [one(o.algorithm)] : [one('ring'), one('hierarchical')];
  const best = choices.reduce((a, c) => (c.exposed < a.exposed ? c : a));
  const stepSec = o.computeSec + best.exposed;
  return {
    gpus: o.gpus, hosts, algorithm: hosts === 1 ? 'ring' : best.alg, buckets: nBuckets, commSec: best.comm, exposedSec: best.exposed,
    stepSec, efficiency: o.computeSec / stepSec,
  };
}

/** ResNet-50's 25,557,032 parameters (torchvision), as fp32 gradients. */
export const RESNET50_GRADIENT_BYTES = 25_557_032 * 4;
/** ResNet-101's 44,549,160 parameters. */
export const RESNET101_GRADIENT_BYTES = 44_549_160 * 4;

/** A link of `gbit` Gbit/s at `efficiency` of its line rate, with latency `alphaUs`. */
export function linkOf(gbit: number, alphaUs: number, efficiency = 1): LinkCost {
  if (!(gbit > 0)) throw new RangeError(`link rate must be > 0 Gbit/s, got ${gbit}`);
  return { alpha: alphaUs * 1e-6, beta: 8 / (gbit * 1e9 * efficiency) };
}
