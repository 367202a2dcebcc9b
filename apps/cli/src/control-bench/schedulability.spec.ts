import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { percentile, SchedulabilityTracker } from './schedulability';

describe('SchedulabilityTracker', () => {
  it('times from the moment the idle workers cover a job, in priority then age order', () => {
    let idle = 4;
    const t = new SchedulabilityTracker(() => idle, () => 8);
    t.add({ id: 'big', size: 6, priority: 0, createdAt: 1, counted: true }, 100);
    t.add({ id: 'small', size: 2, priority: 0, createdAt: 2, counted: true }, 110);
    // Same priority: the small one backfills around the big one that does not fit.
    assert.equal(t.waiting.get('small')!.since, 110);
    assert.equal(t.waiting.get('big')!.since, null);
    t.assigned('small', 150);
    assert.deepEqual(t.latencies, [40]);
    idle = 6;
    t.update(300);
    t.assigned('big', 420);
    assert.deepEqual(t.latencies, [40, 120]);
  });

  it('a job of lower priority waits behind a higher one that could run on the cluster', () => {
    const t = new SchedulabilityTracker(() => 2, () => 8);
    t.add({ id: 'high', size: 4, priority: 10, createdAt: 1, counted: true }, 0);
    t.add({ id: 'low', size: 1, priority: 0, createdAt: 2, counted: true }, 0);
    assert.equal(t.waiting.get('low')!.since, null, 'blocked by the higher priority');
    // One larger than the whole cluster does not block.
    const u = new SchedulabilityTracker(() => 2, () => 8);
    u.add({ id: 'huge', size: 9, priority: 10, createdAt: 1, counted: true }, 0);
    u.add({ id: 'low', size: 1, priority: 0, createdAt: 2, counted: true }, 5);
    assert.equal(u.waiting.get('low')!.since, 5);
  });

  it('uncounted (restarted) runs take workers but record nothing; early assignments count as 0', () => {
    const t = new SchedulabilityTracker(() => 0, () => 4);
    t.add({ id: 'again', size: 1, priority: 0, createdAt: 1, counted: false }, 0);
    t.add({ id: 'new', size: 1, priority: 0, createdAt: 2, counted: true }, 0);
    t.assigned('again', 10);
    t.assigned('new', 20);
    assert.deepEqual(t.latencies, [0]);
    assert.equal(t.early, 1);
  });

  it('percentile by nearest rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i);
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile(xs, 100), 100);
    assert.ok(Number.isNaN(percentile([], 50)));
  });
});
