import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRank, shuffleBufferOrder, minRankSamples, shardPermutation, globalOrder, planGlobalRank, globalIndexOf } from './plan';
import { SplitInfo } from '../manifest';
import { Rng } from '../rng';

function split(sizes: number[]): SplitInfo {
  return { shards: sizes.map((samples, i) => ({ key: `s${i}`, samples, bytes: 0 })), samples: sizes.reduce((a, x) => a + x, 0) };
}

test('ranks 1..4 get disjoint parts whose union is the split (whole shards and sample striding)', () => {
  for (const sizes of [[10, 10, 10, 10, 10, 10, 10, 3], [7, 5], [9]]) {
    const sp = split(sizes);
    for (let n = 1; n <= 4; n++) {
      for (const [epoch, stride] of [[0, 'shard'], [1, 'shard'], [0, 'sample']] as const) {
        const seen = new Map<number, number>();
        for (let r = 0; r < n; r++) {
          const p = planRank(sp, { seed: 5, epoch, rank: r, worldSize: n, shuffle: true, shuffleBuffer: 4, stride });
          if (stride === 'sample') assert.ok(p.slots.length >= Math.floor(sp.samples / n) && minRankSamples(sp, n, 'sample') === Math.floor(sp.samples / n));
          assert.deepEqual([...p.order].sort((a, b) => a - b), [...p.slots].sort((a, b) => a - b), 'shuffle buffer permutes');
          for (const s of p.slots) {
            assert.ok(!seen.has(s), `slot ${s} on ranks ${seen.get(s)} and ${r} (n=${n}, sizes=${sizes})`);
            seen.set(s, r);
          }
          assert.ok(p.slots.length >= minRankSamples(sp, n, stride), 'minRankSamples is a lower bound');
        }
        assert.equal(seen.size, sp.samples);
      }
    }
  }
});

test('minRankSamples is the smallest share in the worst permutation', () => {
  assert.equal(minRankSamples(split([10, 10, 10, 3]), 3), 3);
  assert.equal(minRankSamples(split([10, 10, 10, 3]), 2), 13);
  assert.equal(minRankSamples(split([7, 5]), 3), 4);
  assert.equal(minRankSamples(split([7, 5]), 2), 5);
});

test('same seed same order; another epoch or seed another order', () => {
  const sp = split([10, 10, 10, 10, 10, 10]);
  const o = (seed: number, epoch: number) => planRank(sp, { seed, epoch, rank: 1, worldSize: 2, shuffle: true, shuffleBuffer: 8 }).order;
  assert.deepEqual(o(1, 0), o(1, 0));
  assert.notDeepEqual(o(1, 0), o(1, 1));
  assert.notDeepEqual(o(1, 0), o(2, 0));
  assert.deepEqual(shardPermutation(6, 3, 4, false), [0, 1, 2, 3, 4, 5]);
});

test('shuffle buffer: a permutation that mixes beyond neighbours but only within the buffer reach', () => {
  const stream = Array.from({ length: 1000 }, (_, i) => i);
  const out = shuffleBufferOrder(stream, 50, new Rng(3));
  assert.deepEqual([...out].sort((a, b) => a - b), stream);
  // element emitted at output position k was read at stream position <= k + 49
  out.forEach((x, k) => assert.ok(x <= k + 49, `${x} at ${k}`));
  const displaced = out.filter((x, k) => Math.abs(x - k) > 5).length;
  assert.ok(displaced > 800, `only ${displaced} moved`);
});

test('header dimensions agree with libvips for JPEG (incl. progressive, grey) and PNG', async () => {
  const { dimensions } = await import('./augment');
  const sharp = (await import('sharp')).default;
  const base = sharp({ create: { width: 37, height: 23, channels: 3, background: { r: 1, g: 2, b: 3 } } });
  for (const buf of [await base.clone().jpeg().toBuffer(), await base.clone().jpeg({ progressive: true }).toBuffer(), await base.clone().greyscale().jpeg().toBuffer(), await base.clone().png().toBuffer(), await base.clone().webp().toBuffer()]) {
    assert.deepEqual(await dimensions(buf), { width: 37, height: 23 });
  }
});

test('global order: world sizes 1, 2, 3 and resizes mid-epoch (2→1, 1→3, 3→2) see every sample of the epoch once', () => {
  // 72 samples in uneven shards; global batch 6 divides by 1, 2 and 3: 12 whole batches.
  const sp = split([10, 7, 13, 9, 11, 8, 14]);
  const G = 6;
  const base = { seed: 9, epoch: 2, shuffle: true, shuffleBuffer: 16 };
  const order = globalOrder(sp, base).order;
  assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 72 }, (_, i) => i), 'the global order is a permutation of the split');
  assert.notDeepEqual(globalOrder(sp, { ...base, epoch: 3 }).order, order, 'another epoch, another order');
  // What replica r of n reads in global batches [from, to) of the epoch.
  const take = (n: number, from: number, to: number) => Array.from({ length: n }, (_, r) => {
    const p = planGlobalRank(sp, { ...base, rank: r, worldSize: n, batchSize: G / n });
    return p.slots.slice(from * (G / n), to * (G / n));
  });
  for (const segments of [[[1, 0, 12]], [[2, 0, 12]], [[3, 0, 12]], [[2, 0, 5], [1, 5, 12]], [[1, 0, 3], [3, 3, 12]], [[3, 0, 7], [2, 7, 12]], [[2, 0, 4], [1, 4, 8], [2, 8, 12]]]) {
    const seen = new Map<number, string>();
    for (const [n, from, to] of segments) {
      take(n, from, to).forEach((slots, r) => slots.forEach((s) => {
        assert.ok(!seen.has(s), `slot ${s} seen by ${seen.get(s)} and by rank ${r}/${n} (${JSON.stringify(segments)})`);
        seen.set(s, `rank ${r}/${n}`);
      }));
    }
    assert.equal(seen.size, 72, `${JSON.stringify(segments)} covers the epoch`);
    // Independent of the world size: global batch b is order[bG, (b+1)G) whoever reads it.
    for (const [n, from, to] of segments) {
      for (let b = from; b < to; b++) {
        const batch = take(n, b, b + 1).flat().sort((x, y) => x - y);
        assert.deepEqual(batch, order.slice(b * G, (b + 1) * G).sort((x, y) => x - y), `batch ${b} on ${n}`);
      }
    }
  }
});

test('global order: the partial last batch is dropped; globalIndexOf maps a rank position to the order', () => {
  const sp = split([5, 5, 4]); // 14 samples, G = 4: 3 batches, 2 left out
  const base = { seed: 1, epoch: 0, shuffle: true, shuffleBuffer: 3 };
  const order = globalOrder(sp, base).order;
  for (const n of [1, 2, 4]) {
    for (let r = 0; r < n; r++) {
      const slice = { rank: r, worldSize: n, batchSize: 4 / n };
      const p = planGlobalRank(sp, { ...base, ...slice });
      assert.equal(p.slots.length, 12 / n);
      p.slots.forEach((s, i) => assert.equal(order[globalIndexOf(i, slice)], s));
    }
  }
});
