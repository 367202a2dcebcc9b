import * as assert from 'node:assert/strict';
import { tf } from './tf';
import { initBackend } from './init-backend';
import { dnnlAddon, dnnlLoadError } from './onednn-addon';

/** Deterministic values in [-1, 1) so that every backend sees identical inputs. */
export function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** max |actual − expected| / max |expected|. */
export function relError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) throw new Error(`length ${actual.length} != ${expected.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < actual.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

/**
 * `run` on `backend`, checking that it leaves no tensor behind, then on the pure-JS `cpu`
 * backend, the independent reference every kernel is held to.
 */
async function onBackendThenCpu<T>(backend: 'wasm' | 'onednn', run: () => T): Promise<{ first: T; cpu: T }> {
  await initBackend({ backend });
  const before = tf.memory().numTensors;
  const first = run();
  assert.equal(tf.memory().numTensors, before, `the ${backend} run left tensors behind`);
  await initBackend({ backend: 'cpu' });
  return { first, cpu: run() };
}

/** `run` on the wasm backend with this project's kernels (checked for leftover tensors), then on `cpu`. */
export async function onWasmThenCpu<T>(run: () => T): Promise<{ wasm: T; cpu: T }> {
  const { first, cpu } = await onBackendThenCpu('wasm', run);
  return { wasm: first, cpu };
}

/**
 * Skip reason for the onednn specs when the addon isn't built, or false. CI sets
 * FLEET_REQUIRE_NATIVE_DNNL=1, so a failed build fails those specs instead of skipping them.
 */
export function onednnSkip(): string | false {
  if (dnnlAddon() || process.env.FLEET_REQUIRE_NATIVE_DNNL === '1') return false;
  return `the oneDNN addon is not built (${dnnlLoadError()})`;
}

/** `run` on the onednn backend (checked for leftover tensors), then on `cpu`, the reference. */
export async function onOnednnThenCpu<T>(run: () => T): Promise<{ onednn: T; cpu: T }> {
  const { first, cpu } = await onBackendThenCpu('onednn', run);
  return { onednn: first, cpu };
}

export type ConvPad = 'same' | 'valid' | [[0, 0], [number, number], [number, number], [0, 0]];

/** One convolution of a kernel spec: input NHWC shape, output channels, square kernel. */
export interface ConvCase {
  shape: [number, number, number, number];
  cout: number;
  k: number;
  stride: number;
  pad: ConvPad;
  dilation?: number;
}

/**
 * The strided grid every convolution-kernel spec covers: strides 1/2/4, kernels 1–11,
 * same/valid/explicit (asymmetric) padding, at odd sizes. Channel counts: 3→4 and 2→4 take
 * the SIMD filter gradient's padded path (Cin to a multiple of 4, Cout of 8); 8→16 its
 * unpadded one, and none is a multiple of oneDNN's 8-channel blocks on both sides.
 */
export function stridedConvCases(): ConvCase[] {
  const cases: ConvCase[] = [];
  const shapes: [ConvCase['shape'], number][] = [[[2, 13, 12, 3], 4], [[1, 11, 15, 2], 4], [[2, 12, 11, 8], 16]];
  for (const [shape, cout] of shapes) {
    for (const stride of [1, 2, 4]) {
      for (const k of [1, 3, 5, 7, 11]) {
        const pads: ConvPad[] = ['same', 'valid'];
        if (k > 1) pads.push([[0, 0], [k >> 1, k >> 1], [1, k - 1], [0, 0]]);
        for (const pad of pads) cases.push({ shape, cout, k, stride, pad });
      }
    }
  }
  return cases;
}
