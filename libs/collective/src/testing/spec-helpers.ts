import assert from 'node:assert/strict';
import * as path from 'node:path';
import { RankProcess, Reply, spawnRanks, SpawnOptions } from './harness';

/** The scenario child of the specs (compiled next to this file). */
export const RANK_MAIN = path.join(__dirname, 'rank-main.js');

/** Spawns `n` rank processes, runs `fn`, and always lets them exit. */
export async function withRanks<T>(n: number, fn: (p: RankProcess[]) => Promise<T>, opts?: SpawnOptions): Promise<T> {
  const procs = await spawnRanks(RANK_MAIN, n, opts);
  try {
    return await fn(procs);
  } finally {
    await Promise.all(procs.map((p) => p.exit()));
  }
}

/** The results of replies that must all have succeeded. */
export function ok(replies: Reply[]): any[] {
  for (const r of replies) assert.ok(r.ok, `rank failed: ${r.error?.message}\n${r.error?.stack ?? ''}`);
  return replies.map((r) => r.result);
}

/** Every case within tolerance of the float64 reference and bitwise equal on every rank. */
export function assertAllReduce(results: any[][]): void {
  const n = results.length;
  results[0].forEach((c0: any, k: number) => {
    for (let r = 0; r < n; r++) {
      const c = results[r][k];
      assert.ok(c.worst <= 1, `n=${n} len=${c.len} ${c.op} ${c.wire} rank ${r}: error ${c.maxErr} is ${c.worst}x the tolerance`);
      assert.equal(c.same, true, 'allReduce works in place');
      assert.equal(c.hash, c0.hash, `n=${n} len=${c.len} ${c.op} ${c.wire}: rank ${r} differs from rank 0`);
    }
  });
}

/**
 * Waits until every rank in `procs` has emitted an event (its loop's first call went
 * through). Throws instead of waiting forever when one of `loops` settles first (its first
 * call failed, e.g. a TIMEOUT on a starved host) or after `timeoutMs`.
 */
export async function untilEveryRankEmitted(procs: RankProcess[], loops: Promise<unknown>[], timeoutMs = 120_000): Promise<void> {
  let settled: string | null = null;
  loops.forEach((l, i) => void l.then((r) => (settled ??= `rank ${i} returned before its first event: ${JSON.stringify(r)}`), (e) => (settled ??= `rank ${i} failed before its first event: ${String(e)}`)));
  const t0 = Date.now();
  while (!procs.every((p) => p.events.length > 0)) {
    if (settled) throw new Error(settled);
    if (Date.now() - t0 > timeoutMs) throw new Error(`ranks ${procs.map((p, i) => (p.events.length ? null : i)).filter((i) => i !== null).join(', ')} emitted nothing in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
