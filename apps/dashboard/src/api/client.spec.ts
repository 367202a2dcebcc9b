import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allowedActions, toLogLines } from './client';

describe('dashboard API client', () => {
  it('reads the logs endpoint\'s page of lines', () => {
    const page = { lines: [{ id: '5-0', ts: 1000, rank: 1, level: 'info', workerId: 'w1', msg: 'step 3' }], next: '5-0' };
    assert.deepEqual(toLogLines(page), [{ id: '5-0', ts: 1000, rank: 1, level: 'info', workerId: 'w1', message: 'step 3' }]);
  });

  it('takes a bare array, `entries`, or plain text, and never fails on odd lines', () => {
    assert.deepEqual(toLogLines(['a', 'b']).map((l) => l.message), ['a', 'b']);
    assert.deepEqual(toLogLines({ entries: [{ message: 'x', rank: '2', ts: 'soon' }] }), [{ id: undefined, ts: undefined, rank: 2, level: undefined, workerId: undefined, message: 'x' }]);
    assert.deepEqual(toLogLines('one\ntwo\n').map((l) => l.message), ['one', 'two']);
    assert.deepEqual(toLogLines({ lines: [null] }).map((l) => l.message), ['{}']);
    assert.deepEqual(toLogLines(undefined), []);
    assert.deepEqual(toLogLines({ lines: 'not a list' }), []);
  });

  it('offers the buttons the coordinator accepts in each state', () => {
    const offered = (state: any, pauseRequested?: number) => [...allowedActions({ state, pauseRequested })].sort();
    assert.deepEqual(offered('running'), ['cancel', 'pause']);
    assert.deepEqual(offered('running', Date.now()), ['cancel'], 'no second pause while one is being carried out');
    assert.deepEqual(offered('queued'), ['cancel', 'pause']);
    assert.deepEqual(offered('paused'), ['cancel', 'resume']);
    assert.deepEqual(offered('failed'), ['resume']);
    assert.deepEqual(offered('completed'), []);
    assert.deepEqual(offered('cancelled'), []);
  });
});
