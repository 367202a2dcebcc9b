import type { PipelineSchedule } from './plan';

/** One operation of a pipeline stage: the forward or backward pass of micro-batch `mb`. */
export interface PipeOp {
  kind: 'F' | 'B';
  mb: number;
}

/**
 * The fixed order in which a stage runs its micro-batches' forward and backward passes (and
 * so receives and sends their activations and gradients). With sends that never wait, any
 * per-stage order that respects each stage's own dependencies can neither deadlock nor stall
 * forever: a stage waits only for a message its neighbour sends before it waits itself.
 *
 * - 'gpipe' (Huang et al. 2019, fill-drain): every forward, then every backward. Stage s keeps
 *   the activations of all m micro-batches.
 * - '1f1b' (PipeDream-Flush, Narayanan et al. 2021): S − s − 1 forwards to fill the pipe, then
 *   one forward and one backward in turn, then the remaining backwards. The same bubble as
 *   GPipe, but stage s keeps at most S − s micro-batches' activations.
 *
 * Backwards run in micro-batch order in both, so the gradients are summed in the order a
 * single process accumulating the same micro-batches sums them.
 */
export function pipelineOps(schedule: PipelineSchedule, stages: number, microBatches: number, stage: number): PipeOp[] {
  if (!(stage >= 0 && stage < stages)) throw new RangeError(`stage ${stage} is not in [0, ${stages})`);
  const F = (mb: number): PipeOp => ({ kind: 'F', mb });
  const B = (mb: number): PipeOp => ({ kind: 'B', mb });
  const m = microBatches;
  if (schedule === 'gpipe') return [...Array.from({ length: m }, (_, i) => F(i)), ...Array.from({ length: m }, (_, i) => B(i))];
  const warmup = Math.min(stages - stage - 1, m);
  const ops: PipeOp[] = [];
  for (let i = 0; i < warmup; i++) ops.push(F(i));
  for (let i = 0; i < m - warmup; i++) ops.push(F(warmup + i), B(i));
  for (let i = m - warmup; i < m; i++) ops.push(B(i));
  return ops;
}

/** The largest number of micro-batches whose activations a stage holds at once under `ops`. */
export function peakInFlight(ops: PipeOp[]): number {
  let live = 0;
  let peak = 0;
  for (const op of ops) {
    live += op.kind === 'F' ? 1 : -1;
    peak = Math.max(peak, live);
  }
  return peak;
}

/** GPipe's ideal efficiency with balanced stages and no communication: m / (m + S − 1). */
export function idealEfficiency(stages: number, microBatches: number): number {
  return microBatches / (microBatches + stages - 1);
}
