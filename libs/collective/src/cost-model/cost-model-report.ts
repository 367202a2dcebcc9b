import type { AllreduceBenchResult } from '../bench/allreduce-bench';
import type { TopologyRow } from '../bench/topology-bench';
import {
  fitRing, hierarchicalAllreduce, linkOf, predictStep, ringAllreduce, RESNET101_GRADIENT_BYTES, RESNET50_GRADIENT_BYTES,
  type LinkCost, type StepPrediction,
} from './cost-model';

export interface CostModelOptions {
  /** `fleet bench allreduce --json` output: fits the intra-host (ipc) link. */
  allreduce: AllreduceBenchResult;
  /** `fleet bench allreduce --topology HxL --json` rows: fit the inter-host link (flat ring rows). */
  topology: TopologyRow[];
  /** Rows of other topologies (e.g. 3x2) predicted from the fit, never fitted on. */
  holdout?: TopologyRow[];
  gpus?: number[];
  gpusPerHost?: number;
  /** Per-GPU compute time of one ResNet-50 step. Default 250 ms. */
  stepMs?: number;
  /** Inter-host link of the predicted cluster, Gbit/s. Default 25. */
  linkGbit?: number;
  /**
   * Its latency per message, µs. Default 25 (TCP between hosts of one data centre). Not the
   * α fitted here: that one is ZeroMQ and Node.js on a shared 2-core machine, and it
   * multiplies by 2(H-1) ring steps per bucket at scale.
   */
  alphaUs?: number;
  /** Share of the line rate a ring reaches on it. Default 0.9 (the flat ring kept the shaped link 90-94% busy, docs/benchmarks.md). */
  linkEfficiency?: number;
  /** Intra-host bandwidth of the predicted cluster, GB/s (PCIe 3 x16 about 10, NVLink far more). Default 10. */
  intraGbyte?: number;
  /** Intra-host latency per message, µs. Default 10 (the fitted ipc α is ZeroMQ on a shared machine). */
  intraAlphaUs?: number;
  /** Inter-host links per host of the predicted cluster, each at `linkGbit` (one per GPU: rail-optimised). Default 1. */
  rails?: number;
}

export interface CheckRow { topology: string; rails: number; algorithm: string; bytes: number; measuredMs: number; predictedMs: number; error: number; fitted: boolean }

export interface CostModelReport {
  intra: LinkCost & { rmsRelError: number; samples: number };
  inter: LinkCost & { rmsRelError: number; samples: number; rateMbit: number; lineShare: number };
  checks: CheckRow[];
  predictions: StepPrediction[];
  assumptions: Record<string, number | string>;
  published: { name: string; setting: string; published: string; predicted: StepPrediction }[];
}

/**
 * α/β per link kind from this machine's all-reduce timings, the prediction error against
 * the namespace measurements, then ResNet-50 data parallelism at scale on a given network,
 * and the settings of two published results (Horovod, Goyal et al.) through the same model.
 */
export function costModelReport(o: CostModelOptions): CostModelReport {
  const gpus = o.gpus ?? [8, 64, 256, 1024];
  const gpusPerHost = o.gpusPerHost ?? 8;
  const stepSec = (o.stepMs ?? 250) / 1000;
  const ipc = o.allreduce.rows.filter((r) => r.transport === 'ipc' && r.wire === 'fp32').map((r) => ({ worldSize: r.worldSize, bytes: r.bytes, seconds: r.timeUs / 1e6 }));
  if (ipc.length < 2) throw new Error('the allreduce results have fewer than 2 fp32 ipc rows: run `fleet bench allreduce --transports ipc --json`');
  const intraFit = fitRing(ipc);
  const ring = o.topology.filter((r) => r.algorithm === 'ring');
  if (ring.length < 2) throw new Error('the topology results have fewer than 2 ring rows: run `fleet bench allreduce --topology 2x2 --json` (as root)');
  const n = (t: string) => t.split('x').map(Number) as [number, number];
  const interFit = fitRing(ring.map((r) => ({ worldSize: n(r.topology)[0] * n(r.topology)[1], bytes: r.bytes, seconds: r.timeUs / 1e6 })));
  const rateMbit = ring[0].rateMbit;
  const lineShare = 8 / (rateMbit * 1e6) / interFit.beta;
  const check = (rows: TopologyRow[], fitted: boolean): CheckRow[] => rows.map((r) => {
    const [H, L] = n(r.topology);
    // a row at another shaped rate: the same share of its line rate, the same per-message α
    const inter = { alpha: interFit.alpha, beta: (interFit.beta * rateMbit) / r.rateMbit };
    // the flat ring crosses on one link whatever the rails (topology-bench.ts, interHostBytesPerByte)
    const predicted = r.algorithm === 'ring' ? ringAllreduce(H * L, r.bytes, inter) : hierarchicalAllreduce(H, L, r.bytes, intraFit, inter, undefined, r.rails ?? 1);
    const measured = r.timeUs / 1e6;
    // Fitted: ring rows of the fitted topology; the hierarchical rows use the ipc fit and the ring's inter fit.
    return { topology: r.topology, rails: r.rails ?? 1, algorithm: r.algorithm, bytes: r.bytes, measuredMs: measured * 1e3, predictedMs: predicted * 1e3, error: predicted / measured - 1, fitted: fitted && r.algorithm === 'ring' };
  });
  const alphaUs = o.alphaUs ?? 25;
  const eff = o.linkEfficiency ?? 0.9;
  const inter = linkOf(o.linkGbit ?? 25, alphaUs, eff);
  const intra: LinkCost = { alpha: (o.intraAlphaUs ?? 10) * 1e-6, beta: 1 / ((o.intraGbyte ?? 10) * 1e9) };
  const rails = o.rails ?? 1;
  const predictions = gpus.map((g) => predictStep({ gpus: g, gpusPerHost, computeSec: stepSec, gradientBytes: RESNET50_GRADIENT_BYTES, intra, inter, rails }));
  const published = [
    {
      name: 'Horovod (Sergeev & Del Balso 2018)', setting: 'ResNet-101, 512 GPUs, 4 per server, 25 Gbit/s RoCE, per-GPU step 0.5 s (assumed: Pascal-class, batch 64)',
      published: 'about 90% scaling efficiency',
      predicted: predictStep({ gpus: 512, gpusPerHost: 4, computeSec: 0.5, gradientBytes: RESNET101_GRADIENT_BYTES, intra, inter: linkOf(25, alphaUs, eff) }),
    },
    {
      name: 'Goyal et al. 2017', setting: 'ResNet-50, 256 P100 GPUs, 8 per server, 50 Gbit/s Ethernet, 32 images per GPU, per-GPU step 0.2 s (assumed)',
      published: '90 epochs in about one hour: ~14,000 steps of 8,192 images, so at most ~0.26 s per step',
      predicted: predictStep({ gpus: 256, gpusPerHost: 8, computeSec: 0.2, gradientBytes: RESNET50_GRADIENT_BYTES, intra, inter: linkOf(50, alphaUs, eff) }),
    },
  ];
  return {
    intra: { ...intraFit, samples: ipc.length },
    inter: { ...interFit, samples: ring.length, rateMbit, lineShare },
    checks: [...check(o.topology, true), ...check(o.holdout ?? [], false)],
    predictions,
    assumptions: {
      model: 'resnet50', gradientMB: +(RESNET50_GRADIENT_BYTES / 1e6).toFixed(1), stepMs: stepSec * 1e3, gpusPerHost,
      linkGbit: o.linkGbit ?? 25, alphaUs, linkShare: eff, intraGbyte: o.intraGbyte ?? 10, intraAlphaUs: o.intraAlphaUs ?? 10, rails,
    },
    published,
  };
}

export function formatCostModel(r: CostModelReport): string {
  const us = (s: number) => (s * 1e6).toFixed(1);
  const gbs = (beta: number) => (beta > 0 ? (1 / beta / 1e9).toFixed(3) : 'inf');
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const a = r.assumptions;
  const row = (p: StepPrediction) => `${String(p.gpus).padStart(5)} ${String(p.hosts).padStart(5)}  ${p.algorithm.padEnd(12)} ${String(p.buckets).padStart(3)} ${(p.commSec * 1e3).toFixed(1).padStart(9)} ${(p.exposedSec * 1e3).toFixed(1).padStart(9)} ${(p.stepSec * 1e3).toFixed(1).padStart(8)} ${pct(p.efficiency).padStart(7)}`;
  return [
    'fitted links (T = 2(p-1)α + 2(p-1)/p·n·β, weighted least squares)',
    `  intra-host ipc:  α ${us(r.intra.alpha)} µs  β⁻¹ ${gbs(r.intra.beta)} GB/s   (${r.intra.samples} timings, rms error ${pct(r.intra.rmsRelError)})`,
    `  inter-host tcp:  α ${us(r.inter.alpha)} µs  β⁻¹ ${gbs(r.inter.beta)} GB/s = ${pct(r.inter.lineShare)} of the ${r.inter.rateMbit} Mbit/s shaped link   (${r.inter.samples} timings, rms error ${pct(r.inter.rmsRelError)})`,
    '',
    'check against the namespace measurements (fitted = the ring rows the inter fit came from)',
    'topology rails algorithm      size MB  measured ms  predicted ms   error',
    ...r.checks.map((c) => `${c.topology.padEnd(8)} ${String(c.rails).padStart(5)} ${c.algorithm.padEnd(13)} ${(c.bytes / 2 ** 20).toFixed(0).padStart(7)} ${c.measuredMs.toFixed(1).padStart(12)} ${c.predictedMs.toFixed(1).padStart(13)} ${((c.error >= 0 ? '+' : '') + pct(c.error)).padStart(8)}${c.fitted ? '  (fitted)' : ''}`),
    '',
    `ResNet-50 data parallel (${a.gradientMB} MB fp32 gradients, 25 MB buckets overlapped with the backward pass = 2/3 of a ${a.stepMs} ms per-GPU step),`,
    `${a.gpusPerHost} GPUs per host at ${a.intraGbyte} GB/s and α ${a.intraAlphaUs} µs, ${a.rails} x ${a.linkGbit} Gbit/s between hosts at ${pct(Number(a.linkShare))} of line rate, α ${a.alphaUs} µs:`,
    ' gpus hosts  algorithm    bkt   comm ms exposed ms  step ms    eff',
    ...r.predictions.map(row),
    '',
    'published results through the same model',
    ...r.published.flatMap((p) => [`  ${p.name}: ${p.setting}`, `    published: ${p.published}; model: step ${(p.predicted.stepSec * 1e3).toFixed(0)} ms, efficiency ${pct(p.predicted.efficiency)} (${p.predicted.algorithm})`]),
  ].join('\n');
}
