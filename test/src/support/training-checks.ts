// Checks of what a run trained on and what it ended with, shared by the recovery tests: the
// workers' FLEET_SAMPLE_LOG lines as each step's samples, and the distance between two
// checkpoints' weights.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tensorsFromBytes } from '@tensorfleet/models';
import type { ObjectStore } from '@tensorfleet/data';
import { listCheckpoints, loadCheckpoint } from '@tensorfleet/training';

export interface SampleLine { runId: string; worldSize: number; step: number; epoch: number; rank: number; keys: string[] }

/** The sample-log lines of the files in `dir` whose names pass `keep`. */
export function sampleLines(dir: string, keep: (file: string) => boolean): SampleLine[] {
  return readdirSync(dir).filter(keep)
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as SampleLine));
}

/**
 * Each step's sample keys (all ranks) as the job's history kept them: a step trained again
 * after a restart counts from its last run (the run with the highest membership epoch), and
 * the world size of each run in epoch order.
 */
export function sampleHistory(dir: string, jobId: string): { byStep: Map<number, { run: number; worldSize: number; keys: string[] }>; sizes: number[] } {
  const lines = sampleLines(dir, (f) => f.startsWith(`${jobId}.`));
  const epochOf = (runId: string) => Number(runId.split('.')[1]);
  const byStep = new Map<number, { run: number; worldSize: number; keys: string[] }>();
  for (const l of lines.sort((a, b) => epochOf(a.runId) - epochOf(b.runId) || a.rank - b.rank)) {
    const at = byStep.get(l.step);
    const run = epochOf(l.runId);
    if (!at || at.run < run) byStep.set(l.step, { run, worldSize: l.worldSize, keys: [...l.keys] });
    else if (at.run === run) at.keys.push(...l.keys);
  }
  const sizes = [...new Map(lines.map((l) => [epochOf(l.runId), l.worldSize])).entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
  return { byStep, sizes };
}

/**
 * The world size each step of the history was trained at, as runs of equal sizes: `{ size, last }`
 * with `last` the run's last step (1..steps, none left out). What a replay of the job at the same
 * sizes pauses at.
 */
export function sizeSegments(h: ReturnType<typeof sampleHistory>, steps: number): { size: number; last: number }[] {
  const out: { size: number; last: number }[] = [];
  for (let step = 1; step <= steps; step++) {
    const at = h.byStep.get(step);
    assert.ok(at, `step ${step} is missing from the sample log`);
    if (out.length && out[out.length - 1].size === at.worldSize) out[out.length - 1].last = step;
    else out.push({ size: at.worldSize, last: step });
  }
  return out;
}

/**
 * Asserts that `steps` steps were trained, each on the reference's samples, and that each
 * epoch of `perEpoch` steps of `globalBatch` saw every one of its `epochSamples` once.
 */
export function assertSamplesExactlyOnce(got: ReturnType<typeof sampleHistory>, ref: ReturnType<typeof sampleHistory>, o: { steps: number; perEpoch: number; globalBatch: number; epochSamples: number }): void {
  assert.deepEqual([...got.byStep.keys()].sort((a, b) => a - b), Array.from({ length: o.steps }, (_, i) => i + 1), 'a step is missing');
  for (const [step, { keys }] of ref.byStep) assert.deepEqual([...got.byStep.get(step)!.keys].sort(), [...keys].sort(), `step ${step} trained on other samples`);
  for (let e = 0; e * o.perEpoch < o.steps; e++) {
    const steps = Array.from({ length: Math.min(o.perEpoch, o.steps - e * o.perEpoch) }, (_, i) => e * o.perEpoch + i + 1);
    const keys = steps.flatMap((k) => got.byStep.get(k)!.keys);
    assert.equal(new Set(keys).size, keys.length, `epoch ${e}: a sample seen twice`);
    assert.equal(keys.length, steps.length * o.globalBatch, `epoch ${e}: a step without its global batch`);
    if (steps.length === o.perEpoch) assert.equal(new Set(keys).size, o.epochSamples, `epoch ${e} misses samples`);
  }
}

/** The worst relative L2 distance, tensor by tensor, between two checkpoints' weights (same names asserted). */
export async function worstWeightError(store: ObjectStore, bucket: string, wantKey: string, gotKey: string): Promise<number> {
  return (await weightErrors(store, bucket, wantKey, gotKey)).worst;
}

/** worstWeightError, with the name of the tensor it was found in. */
async function weightErrors(store: ObjectStore, bucket: string, wantKey: string, gotKey: string): Promise<{ worst: number; name: string }> {
  const want = tensorsFromBytes((await loadCheckpoint(store, bucket, wantKey)).weights);
  const got = tensorsFromBytes((await loadCheckpoint(store, bucket, gotKey)).weights);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  let worst = 0;
  let worstName = '';
  for (const [name, w] of Object.entries(want)) {
    const g = got[name].data;
    let d = 0;
    let n = 0;
    for (let i = 0; i < w.data.length; i++) {
      d += (g[i] - w.data[i]) ** 2;
      n += w.data[i] ** 2;
    }
    const e = Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12);
    if (e > worst) [worst, worstName] = [e, name];
  }
  return { worst, name: worstName };
}

/**
 * Where two jobs' weights part: the worst error at every step both have a checkpoint of, and
 * the first of those steps above `limit` (with the tensor), for a failure message that says
 * which stretch of the run to look at.
 */
export async function weightDivergence(store: ObjectStore, bucket: string, wantJob: string, gotJob: string, limit = 1e-6): Promise<string> {
  const want = new Map((await listCheckpoints(store, bucket, wantJob)).map((m) => [m.step, m.key]));
  const rows: string[] = [];
  let first = '';
  for (const m of await listCheckpoints(store, bucket, gotJob)) {
    const key = want.get(m.step);
    if (!key) continue;
    const e = await weightErrors(store, bucket, key, m.key);
    rows.push(`${m.step}:${e.worst.toExponential(1)}`);
    if (!first && e.worst > limit) first = `first above ${limit} at step ${m.step} (${e.name})`;
  }
  return `${first || `never above ${limit}`}; by step ${rows.join(' ')}`;
}
