// The coordinator's half of a memory resume: which survivor's step a restart names, and how
// the restarted run's first report completes the restart's record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobEvent, JobRestart } from '@tensorfleet/control';
import { describeResume, pendingRestart, resumedRestarts, survivorHolding } from './survivor-resume';

const stop = (workerId: string, heldStep?: number, type: JobEvent['type'] = 'rank-failed'): JobEvent => ({ type, rank: 0, workerId, ...(heldStep !== undefined ? { heldStep } : {}) });

test('the newest held step among the claimed workers, if newer than the checkpoint', () => {
  const events = [stop('a', 7), stop('b', 9, 'rank-cancelled'), stop('c', 12), stop('d'), { type: 'rank-completed', rank: 1, workerId: 'e', heldStep: 20 } as JobEvent];
  assert.deepEqual(survivorHolding(events, ['a', 'b'], 5), { step: 9, workerId: 'b' });
  assert.equal(survivorHolding(events, ['a', 'b'], 9), null, 'not newer than the checkpoint');
  assert.equal(survivorHolding(events, ['d', 'e'], 0), null, 'no held step, or not a stop event');
  assert.deepEqual(survivorHolding(events, ['a', 'c'], 0), { step: 12, workerId: 'c' });
});

test('the restarted run\'s rank-started completes the pending restart, once', () => {
  const r: JobRestart = { at: 1, cause: 'stopped heartbeating', worker: 'b', fromStep: 20, lostSteps: 5, stepReached: 25 };
  const done = resumedRestarts({ restarts: [r] }, { type: 'rank-started', rank: 0, step: 25, resumedFrom: 'memory' })!;
  assert.deepEqual(done, [{ ...r, fromStep: 25, lostSteps: 0, resumedFrom: 'memory' }]);
  assert.equal(pendingRestart({ restarts: done }), null);
  assert.equal(resumedRestarts({ restarts: done }, { type: 'rank-started', rank: 0, step: 20, resumedFrom: 'checkpoint' }), null, 'recorded already');
  const fallback = resumedRestarts({ restarts: [r] }, { type: 'rank-started', rank: 0, step: 20, resumedFrom: 'checkpoint' })!;
  assert.deepEqual([fallback[0].fromStep, fallback[0].lostSteps], [20, 5]);
  assert.equal(describeResume(fallback[0]), 'restart resumed from the checkpoint at step 20 (5 steps lost)');
  assert.equal(resumedRestarts({ restarts: [r] }, { type: 'rank-started', rank: 0, step: 20 }), null, 'a worker that does not say');
});
