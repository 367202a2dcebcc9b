import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addDivF32, addF32, divF32 } from './reduce';

/** Deterministic values over many magnitudes and both signs, with exact zeros and ties. */
function values(len: number, seed: number): Float32Array {
  const out = new Float32Array(len);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < len; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const u = (x >>> 0) / 2 ** 32;
    out[i] = i % 11 === 0 ? 0 : (u - 0.5) * 10 ** ((i % 13) - 6);
  }
  return out;
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.slice().buffer));
// lengths around the unroll widths (8, 16), primes and a length that is not a multiple of any
const LENGTHS = [0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 97, 1009, 65537];

test('addF32 equals the element-wise fp32 sum, bit for bit, at every length and offset', () => {
  for (const len of LENGTHS) {
    for (const off of [0, 1, 3]) {
      // views at odd element offsets, as pieces of a segment are
      const dstBase = values(len + off + 2, len + 1);
      const src = values(len + off, len + 7).subarray(off);
      const dst = dstBase.subarray(off, off + len);
      const want = dst.map((v, i) => Math.fround(v + src[i]));
      const before = dstBase.slice();
      addF32(dst, src);
      assert.deepEqual(bits(dst), bits(want), `len ${len} offset ${off}`);
      // nothing outside the view is touched
      for (let i = 0; i < off; i++) assert.equal(dstBase[i], before[i]);
      for (let i = off + len; i < dstBase.length; i++) assert.equal(dstBase[i], before[i]);
    }
  }
});

test('addDivF32 is bit for bit addF32 then divF32 (mean fused with the last addition)', () => {
  for (const len of LENGTHS) {
    for (const d of [2, 3, 7]) {
      const a = values(len, 3 * len + d);
      const b = values(len, 5 * len + d);
      const twoPass = a.slice();
      addF32(twoPass, b);
      divF32(twoPass, d);
      const fused = a.slice();
      addDivF32(fused, b, d);
      assert.deepEqual(bits(fused), bits(twoPass), `len ${len} divisor ${d}`);
      // and both are the correctly rounded fp32 quotient of the fp32 sum
      for (let i = 0; i < len; i++) assert.equal(fused[i], Math.fround(Math.fround(a[i] + b[i]) / d));
    }
  }
});

test('special values: infinities, NaN and signed zeros follow IEEE fp32 addition', () => {
  const dst = new Float32Array([Infinity, -Infinity, NaN, -0, -0, 3.4e38, 1, 2 ** -149, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
  const src = new Float32Array([1, -1, 1, -0, 0, 3.4e38, -1, 2 ** -149, 0, 0, 0, 0, 0, 0, 0, 0, -5]);
  addF32(dst, src);
  assert.equal(dst[0], Infinity);
  assert.equal(dst[1], -Infinity);
  assert.ok(Number.isNaN(dst[2]));
  assert.ok(Object.is(dst[3], -0));
  assert.ok(Object.is(dst[4], 0));
  assert.equal(dst[5], Infinity); // overflow of fp32, although the float64 sum is finite
  assert.equal(dst[6], 0);
  assert.equal(dst[7], 2 ** -148);
  assert.equal(dst[16], 0);
});
