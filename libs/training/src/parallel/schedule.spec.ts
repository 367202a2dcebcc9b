import assert from 'node:assert/strict';
import { test } from 'node:test';
import { idealEfficiency, peakInFlight, pipelineOps, type PipeOp } from './schedule';

/**
 * Runs every stage's op list against the pipeline's dependencies with receives that wait and
 * sends that do not (as over ZeroMQ): F(s, i) needs F(s−1, i)'s activation; B(s, i) needs
 * F(s, i) and B(s+1, i)'s gradient. Each op takes one time unit. Returns the finishing time,
 * or throws if the stages wait on each other forever.
 */
function simulate(lists: PipeOp[][]): number {
  const S = lists.length;
  const done = new Map<string, number>(); // op key -> finish time
  const next = lists.map(() => 0);
  const clock = lists.map(() => 0);
  for (let progress = true; progress; ) {
    progress = false;
    for (let s = 0; s < S; s++) {
      const op = lists[s][next[s]];
      if (!op) continue;
      const deps = op.kind === 'F' ? (s > 0 ? [`F${s - 1}.${op.mb}`] : []) : [`F${s}.${op.mb}`, ...(s < S - 1 ? [`B${s + 1}.${op.mb}`] : [])];
      if (!deps.every((d) => done.has(d))) continue;
      const start = Math.max(clock[s], ...deps.map((d) => done.get(d)!));
      clock[s] = start + 1;
      done.set(`${op.kind}${s}.${op.mb}`, clock[s]);
      next[s]++;
      progress = true;
    }
  }
  const stuck = lists.findIndex((l, s) => next[s] < l.length);
  if (stuck >= 0) throw new Error(`stage ${stuck} waits forever at ${JSON.stringify(lists[stuck][next[stuck]])}`);
  return Math.max(...clock);
}

test('GPipe and 1F1B: every micro-batch once forward and once backward, no stage waits forever, the ideal bubble', () => {
  for (const schedule of ['gpipe', '1f1b'] as const) {
    for (let S = 1; S <= 6; S++) {
      for (let m = 1; m <= 12; m++) {
        if (schedule === '1f1b' && m < S) continue;
        const lists = Array.from({ length: S }, (_, s) => pipelineOps(schedule, S, m, s));
        for (const ops of lists) {
          assert.deepEqual(ops.filter((o) => o.kind === 'F').map((o) => o.mb), [...Array(m).keys()]);
          assert.deepEqual(ops.filter((o) => o.kind === 'B').map((o) => o.mb), [...Array(m).keys()], 'backwards in micro-batch order');
        }
        // Equal F and B costs: 2m units of work per stage in 2(m + S − 1) units of time.
        const t = simulate(lists);
        assert.equal(t, 2 * (m + S - 1), `${schedule} S=${S} m=${m}`);
        assert.ok(Math.abs((2 * m) / t - idealEfficiency(S, m)) < 1e-12);
        const peaks = lists.map(peakInFlight);
        if (schedule === 'gpipe') assert.deepEqual(peaks, lists.map(() => m));
        else assert.deepEqual(peaks, lists.map((_, s) => Math.min(S - s, m)), `1F1B keeps at most S − s micro-batches (S=${S} m=${m})`);
      }
    }
  }
});

test('a stage order that breaks the dependencies is caught by the simulation', () => {
  // The last stage running a backward before its forward could never start.
  const bad = [pipelineOps('gpipe', 2, 2, 0), [{ kind: 'B', mb: 0 }, { kind: 'F', mb: 0 }, { kind: 'F', mb: 1 }, { kind: 'B', mb: 1 }] as PipeOp[]];
  assert.throws(() => simulate(bad), /stage 0 waits forever at {"kind":"B","mb":0}/);
});
