import { createHash } from 'node:crypto';

/** Counter-based random value in [-1, 1) for (seed, rank, index): any element recomputable alone. */
export function value(seed: number, rank: number, i: number): number {
  let h = (i ^ Math.imul(seed, 0x9e3779b1) ^ Math.imul(rank + 1, 0x85ebca6b)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  h = (h ^ (h >>> 16)) >>> 0;
  // fold the high part of i in too, for lengths above 2^32
  const hi = Math.floor(i / 4294967296);
  if (hi) h = Math.imul(h ^ hi, 0x27d4eb2d) >>> 0;
  return h / 2147483648 - 1;
}

export function fill(buf: Float32Array, seed: number, rank: number): Float32Array {
  for (let i = 0; i < buf.length; i++) buf[i] = value(seed, rank, i);
  return buf;
}

export interface CheckResult {
  maxErr: number;
  /** Largest error / tolerance ratio; <= 1 passes. */
  worst: number;
  hash: string;
}

/**
 * Compares `got` with the sum over ranks computed independently in float64. The tolerance per
 * element is `relTol * sum|x|` plus an absolute floor (`absTol`).
 */
export function check(got: Float32Array, seed: number, n: number, mean: boolean, relTol: number, absTol: number): CheckResult {
  let maxErr = 0;
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    let s = 0;
    let a = 0;
    for (let r = 0; r < n; r++) {
      const x = Math.fround(value(seed, r, i));
      s += x;
      a += Math.abs(x);
    }
    if (mean) {
      s /= n;
      a /= n;
    }
    const err = Math.abs(got[i] - s);
    if (!(err <= maxErr)) maxErr = err; // NaN propagates as a failure
    const ratio = err / (relTol * a + absTol);
    if (!(ratio <= worst)) worst = ratio;
  }
  return { maxErr, worst, hash: hashOf(got) };
}

export function hashOf(buf: ArrayBufferView): string {
  return createHash('sha1').update(new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)).digest('hex');
}
