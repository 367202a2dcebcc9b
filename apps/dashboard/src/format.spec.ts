import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ago, bytes, count, duration, fixed, percent } from './format';

describe('dashboard formatting', () => {
  it('shows missing or non-finite numbers as a dash', () => {
    for (const f of [(v: any) => fixed(v, 2), percent, bytes, count, (v: any) => ago(v, 0), duration]) {
      assert.equal(f(undefined), '–');
      assert.equal(f(Number.NaN), '–');
    }
  });

  it('formats bytes, parameter counts, percentages and durations', () => {
    assert.deepEqual([bytes(999), bytes(1000), bytes(2_500_000), bytes(3.2e9)], ['999 B', '1.0 kB', '2.5 MB', '3.2 GB']);
    assert.deepEqual([count(512), count(78_000), count(11_689_512), count(6.1e10)], ['512', '78.0k', '11.69M', '61.00G']);
    assert.equal(percent(0.4567), '45.7%');
    assert.deepEqual([duration(12), duration(185), duration(3725)], ['12s', '3m 05s', '1h 02m']);
    assert.deepEqual([ago(10_000, 14_000), ago(0, 200_000), ago(0, 7_300_000), ago(0, 3 * 86_400_000)], ['4s', '3m', '2h', '3d']);
  });
});
