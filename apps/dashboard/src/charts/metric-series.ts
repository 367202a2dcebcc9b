import type { MetricEntry } from '@tensorfleet/control';

/** Columns for uPlot: steps, then one column per series, `null` where a series has no point. */
export type Columns = [number[], ...(number | null)[][]];

/**
 * A job's metrics by step, as the charts draw them. Only rank 0 reports (the all-reduced
 * figures); a step seen twice (a run resumed from a checkpoint trains it again) keeps the
 * newer entry, so the curve shows what the job went on from.
 */
export class MetricSeries {
  private readonly train = new Map<number, MetricEntry>();
  private readonly held = new Map<number, MetricEntry>();

  add(m: MetricEntry): boolean {
    if (m.rank !== undefined && Number(m.rank) !== 0) return false;
    const step = Number(m.step);
    if (!Number.isFinite(step)) return false;
    (m.kind === 'eval' ? this.held : this.train).set(step, m);
    return true;
  }

  /** Training steps drawn. */
  get trainPoints(): number { return this.train.size; }
  get evalPoints(): number { return this.held.size; }

  /** Training and held-out values of `field` on one step axis: [steps, train, held-out]. */
  pair(field: 'loss' | 'accuracy'): Columns {
    const steps = [...new Set([...this.train.keys(), ...this.held.keys()])].sort((a, b) => a - b);
    return [steps, steps.map((s) => value(this.train.get(s), field)), steps.map((s) => value(this.held.get(s), field))];
  }

  /** A training-only field (lr, imagesPerSec): [steps, values]. */
  single(field: 'lr' | 'imagesPerSec'): Columns {
    const steps = [...this.train.keys()].sort((a, b) => a - b);
    return [steps, steps.map((s) => value(this.train.get(s), field))];
  }
}

function value(m: MetricEntry | undefined, field: string): number | null {
  const v = m === undefined ? undefined : Number(m[field]);
  return v === undefined || !Number.isFinite(v) ? null : v;
}
