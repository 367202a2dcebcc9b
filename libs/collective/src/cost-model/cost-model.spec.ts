import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fitRing, hierarchicalAllreduce, linkOf, predictStep, ringAllreduce, type LinkCost } from './cost-model';

/**
 * An independent reference: the ring played step by step. Each of the 2(p-1) steps every
 * rank sends one chunk of n/p bytes to its neighbour at the same time, so a step costs one
 * message of n/p bytes.
 */
function simulatedRing(p: number, bytes: number, link: LinkCost): number {
  let t = 0;
  const chunk = bytes / p;
  for (let phase = 0; phase < 2; phase++) for (let s = 0; s < p - 1; s++) t += link.alpha + chunk * link.beta;
  return t;
}

describe('cost model', () => {
  const link = { alpha: 40e-6, beta: 1 / 0.9e9 };

  it('ring all-reduce matches the step-by-step ring', () => {
    for (const p of [2, 3, 4, 8, 64, 1024]) {
      for (const n of [4096, 1 << 20, 100e6]) {
        const want = simulatedRing(p, n, link);
        assert.ok(Math.abs(ringAllreduce(p, n, link) - want) <= 1e-12 * Math.max(1, want), `p=${p} n=${n}`);
      }
    }
    assert.equal(ringAllreduce(1, 1e6, link), 0);
  });

  it('fitRing recovers α and β from timings made with them', () => {
    const samples = [2, 4].flatMap((p) => [4096, 65536, 1 << 20, 16 << 20, 64 << 20].map((bytes) => ({ worldSize: p, bytes, seconds: ringAllreduce(p, bytes, link) })));
    const fit = fitRing(samples);
    assert.ok(Math.abs(fit.alpha / link.alpha - 1) < 1e-6, `alpha ${fit.alpha}`);
    assert.ok(Math.abs(fit.beta / link.beta - 1) < 1e-6, `beta ${fit.beta}`);
    assert.ok(fit.rmsRelError < 1e-6);
  });

  it('fitRing clamps a negative latency to 0 and refits the bandwidth', () => {
    // Times proportional to the bytes moved, with small ones slightly faster than that: the intercept goes negative.
    const samples = [1 << 20, 4 << 20, 16 << 20].map((bytes, i) => ({ worldSize: 2, bytes, seconds: bytes * 1e-9 * (i === 0 ? 0.9 : 1) }));
    const fit = fitRing(samples);
    assert.equal(fit.alpha, 0);
    assert.ok(fit.beta > 0.9e-9 && fit.beta < 1.01e-9, `beta ${fit.beta}`);
    assert.throws(() => fitRing(samples.slice(0, 1)), /at least 2/);
  });

  it('hierarchical (pipelined): one host is a reduce-scatter plus an all-gather; one rank per host is the cross ring; stages overlap', () => {
    const intra = { alpha: 5e-6, beta: 1 / 5e9 };
    const n = 64 << 20;
    // one chunk: nothing overlaps, the three stages add up
    assert.ok(Math.abs(hierarchicalAllreduce(1, 4, n, intra, link, n) - ringAllreduce(4, n, intra)) < 1e-12);
    assert.ok(Math.abs(hierarchicalAllreduce(4, 1, n, intra, link, n) - ringAllreduce(4, n, link)) < 1e-12);
    // 2 hosts of 2: the link carries the buffer once (2(H-1)/H = 1), the flat ring 1.5 times;
    // with free intra-host stages 32 chunks cost 32 cross-host latencies
    const cross = hierarchicalAllreduce(2, 2, n, { alpha: 0, beta: 0 }, link);
    assert.ok(Math.abs(cross - (32 * 2 * link.alpha + n * link.beta)) < 1e-9);
    // intra stages slower than nothing but faster than the link: hidden but for one chunk each
    const hidden = hierarchicalAllreduce(2, 2, n, { alpha: 0, beta: link.beta / 4 }, { alpha: 0, beta: link.beta });
    assert.ok(Math.abs(hidden - (n * link.beta + 2 * (n / 32) * 0.5 * (link.beta / 4))) < 1e-9);
  });

  it('hierarchical with rails: a link per local rank divides the cross-host stage by L; more rails than ranks change nothing', () => {
    const n = 64 << 20;
    const free = { alpha: 0, beta: 0 };
    const oneLink = hierarchicalAllreduce(2, 2, n, free, link);
    const twoRails = hierarchicalAllreduce(2, 2, n, free, link, undefined, 2);
    // 2 hosts of 2: 32 chunks; each rail carries the buffer's half once, the latencies stay
    assert.ok(Math.abs(twoRails - (32 * 2 * link.alpha + (n / 2) * link.beta)) < 1e-9, `two rails ${twoRails}`);
    assert.ok(twoRails < oneLink);
    assert.equal(hierarchicalAllreduce(2, 2, n, free, link, undefined, 4), twoRails);
    // 4 ranks on 2 rails: two rings per rail, half of the single link's load
    const four = hierarchicalAllreduce(2, 4, n, free, { alpha: 0, beta: link.beta }, undefined, 2);
    assert.ok(Math.abs(four - hierarchicalAllreduce(2, 4, n, free, { alpha: 0, beta: link.beta }) / 2) < 1e-9);
    assert.throws(() => hierarchicalAllreduce(2, 2, n, free, link, undefined, 0), /rails must be a positive integer/);
  });

  it('predictStep: communication hides behind the backward pass except the last bucket', () => {
    const fast = linkOf(1e6, 0);
    const p = predictStep({ gpus: 8, gpusPerHost: 8, computeSec: 0.3, gradientBytes: 100e6, intra: fast, inter: fast });
    assert.equal(p.hosts, 1);
    assert.ok(p.efficiency > 0.999, `efficiency ${p.efficiency}`);
    // A slow network: comm far beyond the backward pass, exposed = comm - hidden part of the backward.
    const slow = linkOf(1, 50);
    const q = predictStep({ gpus: 64, gpusPerHost: 8, computeSec: 0.3, gradientBytes: 100e6, bucketBytes: 25e6, intra: linkOf(80, 5), inter: slow });
    assert.equal(q.buckets, 4);
    assert.ok(Math.abs(q.exposedSec - (q.commSec - 0.2 * 0.75)) < 1e-9, `exposed ${q.exposedSec} comm ${q.commSec}`);
    assert.ok(Math.abs(q.stepSec - (0.3 + q.exposedSec)) < 1e-12);
    assert.ok(q.efficiency < 0.5);
    // More GPUs on the same network never scale better.
    const effs = [8, 64, 256, 1024].map((g) => predictStep({ gpus: g, gpusPerHost: 8, computeSec: 0.25, gradientBytes: 102e6, intra: linkOf(80, 5), inter: linkOf(25, 20) }).efficiency);
    for (let i = 1; i < effs.length; i++) assert.ok(effs[i] <= effs[i - 1] + 1e-12, `efficiency rose: ${effs}`);
  });

  it('linkOf rejects a rate that is not positive', () => {
    assert.throws(() => linkOf(0, 1), /must be > 0/);
  });
});
