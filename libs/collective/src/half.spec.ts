import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeBF16Into, decodeF16Into, encodeBF16, encodeF16, fromF16, toF16 } from './half';
import { decodeHeader, encodeHeader, HEADER_BYTES } from './header';
import { mod, RingLayout } from './partition';
import { planBuckets } from './bucketing';
import { FrameType, OpKind, WireType } from './types';

test('fp16 encoding rounds to nearest even at the edges', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519, 0x7bff], // below the halfway point to 65536
    [65520, 0x7c00], // halfway rounds to even: overflow to infinity
    [Infinity, 0x7c00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie to even -> 0
    [3 * 2 ** -25, 0x0002], // tie to even -> 2
    [2 ** -14, 0x0400], // smallest normal
    [1 + 2 ** -11, 0x3c00], // tie, even mantissa stays
    [1 + 3 * 2 ** -11, 0x3c02], // tie, odd mantissa rounds up
    [0.1, 0x2e66],
  ];
  for (const [x, h] of cases) assert.equal(toF16(x), h, `toF16(${x})`);
  assert.equal(toF16(NaN) & 0x7c00, 0x7c00);
  assert.ok(Number.isNaN(fromF16(toF16(NaN))));
});

test('every finite fp16 value survives decode then encode', () => {
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assert.equal(toF16(fromF16(h)), h);
  }
});

test('fp16 and bf16 array codecs: error within half an ulp, add mode adds', () => {
  const src = new Float32Array(10000).map((_, i) => Math.sin(i) * 10 ** ((i % 9) - 4));
  const f16 = new Float32Array(src.length);
  decodeF16Into(encodeF16(src), f16, false);
  const bf = new Float32Array(src.length);
  decodeBF16Into(encodeBF16(src), bf, false);
  for (let i = 0; i < src.length; i++) {
    const x = src[i];
    assert.ok(Math.abs(f16[i] - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25, `fp16 ${x} -> ${f16[i]}`);
    assert.ok(Math.abs(bf[i] - x) <= Math.abs(x) * 2 ** -8, `bf16 ${x} -> ${bf[i]}`);
  }
  const acc = new Float32Array([1, 2]);
  decodeF16Into(encodeF16(new Float32Array([0.5, 0.25])), acc, true);
  assert.deepEqual(Array.from(acc), [1.5, 2.25]);
  decodeBF16Into(encodeBF16(new Float32Array([0.5, 0.25])), acc, true);
  assert.deepEqual(Array.from(acc), [2, 2.5]);
  assert.equal(encodeBF16(new Float32Array([1]))[0], 0x3f80);
});

test('header round trip and foreign frames', () => {
  const h = { type: FrameType.Data, runHash: 0xdeadbeef, epoch: 7, seq: 123456, src: 65535, op: OpKind.AllReduce, wire: WireType.F16, step: 9, piece: 4000000, tag: 0xffffffff, total: 1e11, group: 0xfedcba98 };
  const b = encodeHeader(h);
  assert.equal(b.length, HEADER_BYTES);
  assert.deepEqual(decodeHeader(b), h);
  b[0] ^= 1;
  assert.equal(decodeHeader(b), null);
  assert.equal(decodeHeader(Buffer.alloc(3)), null);
});

test('ring layout covers every element once, pieces equal in number per segment', () => {
  for (const [len, n, p] of [[0, 3, 4], [1, 4, 4], [7919, 8, 100], [10, 3, 1], [1000, 7, 1000]]) {
    const L = new RingLayout(len, n, p);
    const seen = new Uint8Array(len);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < L.pieces; j++) {
        const [s, e] = L.piece(i, j);
        assert.ok(e - s <= p || L.pieces === 1);
        for (let k = s; k < e; k++) seen[k]++;
      }
    }
    assert.ok(seen.every((x) => x === 1), `len ${len} n ${n}`);
  }
  assert.equal(mod(-1, 5), 4);
});

test('buckets: consecutive, capped, an oversized tensor alone', () => {
  assert.deepEqual(planBuckets([10, 10, 10, 100, 1], 80), [[0, 1], [2], [3], [4]]);
  assert.deepEqual(planBuckets([], 80), []);
  assert.deepEqual(planBuckets([1, 1, 1], 1e9), [[0, 1, 2]]);
});
