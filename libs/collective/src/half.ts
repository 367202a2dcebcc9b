// fp16 / bf16 wire encodings. Encoding rounds to nearest even; additions stay in fp32.
import { addF32 } from './reduce';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

let f16Table: Float32Array | null = null;
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) t[h] = s * m * 2 ** -24;
    else if (e === 31) t[h] = m ? NaN : s * Infinity;
    else t[h] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (f16Table = t);
}

export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const e32 = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (e32 === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const e = e32 - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  const h = (e << 10) | (m >>> 13);
  // branch-free round to nearest even (random data mispredicts a branch half the time);
  // a carry into the exponent is correct rounding
  return sign | (h + (((m & 0x1fff) + (h & 1) + 0xfff) >>> 13));
}

export function toF16(x: number): number {
  f32[0] = x;
  return f32BitsToF16(u32[0]);
}

export function fromF16(h: number): number {
  return halfTable()[h & 0xffff];
}

// Int32Array views throughout: Uint32 values >= 2^31 would leave V8's int32 fast path.
export function encodeF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) dst[i] = f32BitsToF16(bits[i]);
  return dst;
}

export function encodeBF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Int32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    const hi = x >>> 16;
    if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) {
      dst[i] = hi | 0x40; // keep NaN a NaN
      continue;
    }
    dst[i] = hi + (((x & 0xffff) + (hi & 1) + 0x7fff) >>> 16); // round to nearest even, branch-free
  }
  return dst;
}

/** dst[i] (+)= decode(src[i]). */
export function decodeF16Into(src: Uint16Array, dst: Float32Array, add: boolean): void {
  const t = halfTable();
  if (add) for (let i = 0; i < src.length; i++) dst[i] += t[src[i]];
  else for (let i = 0; i < src.length; i++) dst[i] = t[src[i]];
}

let scratch = new Int32Array(0);

export function decodeBF16Into(src: Uint16Array, dst: Float32Array, add: boolean): void {
  const n = src.length;
  if (!add) {
    const bits = new Int32Array(dst.buffer, dst.byteOffset, n);
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
    return;
  }
  // widen into a reusable scratch first: two tight loops beat one with a scalar bit cast
  if (scratch.length < n) scratch = new Int32Array(n);
  for (let i = 0; i < n; i++) scratch[i] = src[i] << 16;
  addF32(dst, new Float32Array(scratch.buffer, 0, n));
}
