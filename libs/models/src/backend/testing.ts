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
 * `run` on the wasm backend with this project's kernels, checking that it leaves no tensor
 * behind, then on the pure-JS `cpu` backend, the independent reference every kernel is held to.
 */
export async function onWasmThenCpu<T>(run: () => T): Promise<{ wasm: T; cpu: T }> {
  await initBackend({ backend: 'wasm' });
  const before = tf.memory().numTensors;
  const wasm = run();
  assert.equal(tf.memory().numTensors, before, 'the wasm run left tensors behind');
  await initBackend({ backend: 'cpu' });
  return { wasm, cpu: run() };
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
  await initBackend({ backend: 'onednn' });
  const before = tf.memory().numTensors;
  const onednn = run();
  assert.equal(tf.memory().numTensors, before, 'the onednn run left tensors behind');
  await initBackend({ backend: 'cpu' });
  return { onednn, cpu: run() };
}
