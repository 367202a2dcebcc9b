import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeTensors, encodeTensors } from './state-bytes';
import { TrainingError } from '../errors';

describe('initial-state wire format', () => {
  it('round-trips arrays and meta, also from a buffer at an odd offset', () => {
    const tensors = [
      { name: 'a/kernel', shape: [2, 3], values: Float32Array.from([1, -2, 3.5, 1e-30, -0, Infinity]) },
      { name: 'b', shape: [1], values: Float32Array.from([Math.PI]) },
      { name: 'empty', shape: [0], values: new Float32Array(0) },
    ];
    const bytes = encodeTensors(tensors, { step: 7, schedule: { type: 'constant' } });
    assert.equal(bytes.byteLength % 4, 0);
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    for (const b of [bytes, shifted.subarray(1)]) {
      const out = decodeTensors(b);
      assert.deepEqual(out.meta, { step: 7, schedule: { type: 'constant' } });
      assert.deepEqual(out.tensors, tensors);
    }
  });

  it('rejects foreign or truncated buffers and shape/value mismatches', () => {
    const bytes = encodeTensors([{ name: 'x', shape: [4], values: new Float32Array(4) }]);
    const bad = (e: unknown) => e instanceof TrainingError && e.code === 'STATE_MISMATCH';
    assert.throws(() => decodeTensors(bytes.subarray(0, bytes.byteLength - 4)), bad);
    assert.throws(() => decodeTensors(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])), bad);
    assert.throws(() => encodeTensors([{ name: 'x', shape: [3], values: new Float32Array(4) }]), /holds 3 values/);
  });
});
