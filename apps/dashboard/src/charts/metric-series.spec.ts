import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MetricEntry } from '@tensorfleet/control';
import { MetricSeries } from './metric-series';

const m = (kind: 'train' | 'eval', step: number, loss: number, extra: Partial<MetricEntry> = {}): MetricEntry =>
  ({ kind, step, epoch: 0, loss, accuracy: 1 - loss, rank: 0, ts: step, ...extra });

describe('MetricSeries', () => {
  it('aligns training and held-out points on one sorted step axis, null where a series has none', () => {
    const s = new MetricSeries();
    for (const e of [m('train', 2, 0.8), m('train', 1, 0.9), m('eval', 2, 0.85), m('train', 3, 0.7)]) s.add(e);
    assert.deepEqual(s.pair('loss'), [[1, 2, 3], [0.9, 0.8, 0.7], [null, 0.85, null]]);
    assert.equal(s.trainPoints, 3);
    assert.equal(s.evalPoints, 1);
  });

  it('keeps only rank 0 and the newest entry of a step trained again after a restart', () => {
    const s = new MetricSeries();
    assert.equal(s.add(m('train', 1, 0.9, { rank: 1 })), false);
    s.add(m('train', 1, 0.9));
    s.add(m('train', 2, 0.8));
    s.add(m('train', 2, 0.75));
    assert.deepEqual(s.pair('loss'), [[1, 2], [0.9, 0.75], [null, null]]);
  });

  it('gives lr and throughput from the training entries only, null where a value is missing or not a number', () => {
    const s = new MetricSeries();
    s.add(m('train', 1, 1, { lr: 0.1, imagesPerSec: 50 }));
    s.add(m('train', 2, 1, { lr: 0.05 }));
    s.add(m('eval', 2, 1, { lr: 0, imagesPerSec: 0 }));
    s.add(m('train', 3, 1, { lr: Number.NaN, imagesPerSec: 70 }));
    assert.deepEqual(s.single('lr'), [[1, 2, 3], [0.1, 0.05, null]]);
    assert.deepEqual(s.single('imagesPerSec'), [[1, 2, 3], [50, null, 70]]);
  });

  it('reads numbers sent as strings (Redis stream fields) and skips an entry without a step', () => {
    const s = new MetricSeries();
    s.add({ ...m('train', 0, 0), step: '4' as unknown as number, loss: '0.5' as unknown as number });
    assert.equal(s.add({ ...m('train', 0, 0), step: undefined as unknown as number }), false);
    assert.deepEqual(s.pair('loss'), [[4], [0.5], [null]]);
  });
});
