import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pausingNote } from './job-cells';

describe('job cells', () => {
  it('a pending pause: now, or after its step; nothing without one', () => {
    assert.equal(pausingNote({ pauseRequested: 1_700_000_000_000 }), '(pausing)');
    assert.equal(pausingNote({ pauseAtStep: 40 }), '(pausing after step 40)');
    assert.equal(pausingNote({ pauseRequested: 1, pauseAtStep: 40 }), '(pausing)', 'a pause now wins');
    assert.equal(pausingNote({}), undefined);
  });
});
