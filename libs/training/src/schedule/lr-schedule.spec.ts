import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLrSchedule, LrScheduleContext, LrScheduleSpec, LrScheduleState } from './lr-schedule';
import { TrainingError } from '../errors';

const ctx = { stepsPerEpoch: 10, totalSteps: 100 };
const lrsAt = (spec: LrScheduleSpec, steps: number[], c: LrScheduleContext = ctx) => {
  const s = createLrSchedule(spec, c);
  return steps.map((t) => s.lr(t));
};
const close = (a: number[], b: number[]) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-12, `[${i}] ${v} vs ${b[i]}`));

describe('createLrSchedule', () => {
  it('constant', () => {
    assert.deepEqual(lrsAt({ type: 'constant', lr: 0.1 }, [0, 50, 99]), [0.1, 0.1, 0.1]);
  });

  it('step: gamma every stepSize epochs', () => {
    close(lrsAt({ type: 'step', lr: 1, stepSize: 3, gamma: 0.1 }, [0, 29, 30, 59, 60, 99]), [1, 1, 0.1, 0.1, 0.01, 0.001]);
  });

  it('multistep: gamma at each milestone epoch (ResNet: 30, 60, 80)', () => {
    const c = { stepsPerEpoch: 5, totalSteps: 450 };
    const expected = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001];
    const at = [0, 149, 150, 299, 300, 399, 400, 449];
    close(lrsAt({ type: 'multistep', lr: 0.1, milestones: [30, 60, 80] }, at, c), expected);
    close(lrsAt({ type: 'multistep', lr: 1, milestones: [1, 1] }, [0, 10], { stepsPerEpoch: 10, totalSteps: 20 }), [1, 0.01]);
    // The job spec's `step` with milestones means the same.
    close(lrsAt({ type: 'step', lr: 0.1, milestones: [30, 60, 80] }, at, c), expected);
  });

  it('cosine: half-cosine from the peak at the end of warmup to 0 at totalSteps', () => {
    close(lrsAt({ type: 'cosine', lr: 0.4 }, [0, 25, 50, 75, 100, 120]), [0.4, 0.2 * (1 + Math.SQRT1_2), 0.2, 0.2 * (1 - Math.SQRT1_2), 0, 0]);
    // With 20 warmup steps the cosine spans steps 20..100.
    close(lrsAt({ type: 'cosine', lr: 0.4, warmupSteps: 20 }, [0, 10, 20, 60, 100]), [0, 0.2, 0.4, 0.2, 0]);
  });

  it('linear warmup from 0 when unscaled (lr·t/W), then the main schedule', () => {
    close(lrsAt({ type: 'step', lr: 0.1, warmupSteps: 5, stepSize: 1, gamma: 0.5 }, [0, 1, 4, 5, 9, 10]), [0, 0.02, 0.08, 0.1, 0.1, 0.05]);
  });

  it('linear scaling rule (Goyal et al.): lr × worldSize·batch/256, warmup from the unscaled lr', () => {
    // 8 ranks × 128 = 1024 samples: k = 4, peak 0.4; warmup over 10 steps from 0.1.
    const c = { stepsPerEpoch: 10, totalSteps: 100, worldSize: 8, baseBatch: 128 };
    const s = createLrSchedule({ type: 'multistep', lr: 0.1, milestones: [5], warmupSteps: 10, scaleWithWorldSize: true }, c);
    assert.equal(s.peakLr, 0.4);
    close([0, 5, 10, 49, 50].map((t) => s.lr(t)), [0.1, 0.25, 0.4, 0.4, 0.04]);
    // A small global batch scales down and warms up from 0.
    close(lrsAt({ type: 'constant', lr: 0.1, warmupSteps: 4, scaleWithWorldSize: true }, [0, 2, 4], { ...c, worldSize: 2, baseBatch: 32 }),
      [0, 0.0125, 0.025]);
    assert.throws(() => createLrSchedule({ type: 'constant', lr: 0.1, scaleWithWorldSize: true }, ctx), /baseBatch/);
  });

  it('plateau: reduces after `patience` evaluations without improvement (PyTorch semantics); state round-trips', () => {
    const s = createLrSchedule({ type: 'plateau', lr: 1, patience: 2, gamma: 0.5 }, ctx);
    const seen = [3, 2, 2.1, 2.0, 1.9999, 5].map((m) => [s.observe(m), s.lr(0)] as const);
    // 2 best; 2.1, 2.0 and 1.9999 (< 1e-4 relative better) are 3 bad ones: reduce on the third.
    assert.deepEqual(seen, [[false, 1], [false, 1], [false, 1], [false, 1], [true, 0.5], [false, 0.5]]);
    const saved = JSON.parse(JSON.stringify(s.state())) as LrScheduleState;
    assert.deepEqual(saved, { type: 'plateau', plateau: { best: 2, bad: 1, factor: 0.5, reductions: 1 } });
    const restored = createLrSchedule({ type: 'plateau', lr: 1, patience: 2, gamma: 0.5 }, ctx);
    restored.load(saved);
    assert.equal(restored.lr(7), 0.5);
    assert.equal(restored.observe(6), false);
    assert.equal(restored.observe(6), true, 'the restored bad count carries on');
    assert.equal(restored.lr(7), 0.25);
    // mode max (accuracy) and the minLr floor.
    const acc = createLrSchedule({ type: 'plateau', lr: 1, patience: 0, gamma: 0.1, mode: 'max', minLr: 0.05 }, ctx);
    acc.observe(0.5);
    assert.equal(acc.observe(0.6), false);
    assert.equal(acc.observe(0.6), true);
    assert.equal(acc.lr(0), 0.1);
    acc.observe(0.6);
    assert.equal(acc.lr(0), 0.05);
  });

  it('non-plateau schedules ignore observe and round-trip a trivial state', () => {
    const s = createLrSchedule({ type: 'step', lr: 1, stepSize: 1 }, ctx);
    assert.equal(s.observe(1), false);
    assert.deepEqual(s.state(), { type: 'step' });
    assert.throws(() => s.load({ type: 'cosine' }), (e: unknown) => e instanceof TrainingError && e.code === 'STATE_MISMATCH');
  });

  it('rejects invalid specs with messages that name the field', () => {
    assert.throws(() => createLrSchedule({ type: 'step', lr: 0.1 }, ctx), /stepSize/);
    assert.throws(() => createLrSchedule({ type: 'step', lr: 0.1, stepSize: 2, milestones: [3] }, ctx), /not both/);
    assert.throws(() => createLrSchedule({ type: 'multistep', lr: 0.1, milestones: [30, 20] }, ctx), /milestones/);
    assert.throws(() => createLrSchedule({ type: 'cosine', lr: 0.1, warmupSteps: 100 }, ctx), /totalSteps/);
    assert.throws(() => createLrSchedule({ type: 'warm' as never, lr: 0.1 }, ctx), /type must be/);
    assert.throws(() => createLrSchedule({ type: 'constant', lr: 0 }, ctx), /lr must be > 0/);
  });
});
