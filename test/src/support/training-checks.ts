// Checks of what a run trained on and what it ended with, shared by the recovery tests: the
// workers' FLEET_SAMPLE_LOG lines as each step's samples, and the distance between two
// checkpoints' weights.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tensorsFromBytes } from '@tensorfleet/models';
import type { ObjectStore } from '@tensorfleet/data';
import { loadCheckpoint } from '@tensorfleet/training';

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
export function sampleHistory(dir: string, jobId: string): { byStep: Map<number, { run: number; keys: string[] }>; sizes: number[] } {
  const lines = sampleLines(dir, (f) => f.startsWith(`${jobId}.`));
  const epochOf = (runId: string) => Number(runId.split('.')[1]);
  const byStep = new Map<number, { run: number; keys: string[] }>();
  for (const l of lines.sort((a, b) => epochOf(a.runId) - epochOf(b.runId) || a.rank - b.rank)) {
    const at = byStep.get(l.step);
    const run = epochOf(l.runId);
    if (!at || at.run < run) byStep.set(l.step, { run, keys: [...l.keys] });
    else if (at.run === run) at.keys.push(...l.keys);
  }
  const sizes = [...new Map(lines.map((l) => [epochOf(l.runId), l.worldSize])).entries()].sort((a, b) => a[0] - b[0]).map(([, n]) => n);
  return { byStep, sizes };
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
  const want = tensorsFromBytes((await loadCheckpoint(store, bucket, wantKey)).weights);
  const got = tensorsFromBytes((await loadCheckpoint(store, bucket, gotKey)).weights);
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  let worst = 0;
  for (const [name, w] of Object.entries(want)) {
    const g = got[name].data;
    let d = 0;
    let n = 0;
    for (let i = 0; i < w.data.length; i++) {
      d += (g[i] - w.data[i]) ** 2;
      n += w.data[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(d) / Math.max(Math.sqrt(n), 1e-12));
  }
  return worst;
}
