import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tf } from '../tf';
import { initBackend } from '../init-backend';
import { fleetKernels } from './fleet-kernels';

test('the committed wasm bytes are what fleet-kernels.wat assembles to', () => {
  // libs/models/dist/backend/simd → the workspace's scripts/
  const script = join(__dirname, '../../../../../scripts/assemble-wat.mjs');
  const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('the SIMD kernels instantiate on the wasm backend heap and see its tensors', async () => {
  await initBackend({ backend: 'wasm' });
  const kernels = fleetKernels(tf.backend());
  assert.ok(kernels, 'tfjs-backend-wasm memory reachable');
  const x = tf.tensor1d([1, -2, 3, -4, 5, 0, 7, -8]);
  const dy = tf.tensor1d([10, 20, 30, 40, 50, 60, 70, 80]);
  const dx = tf.engine().runKernel('FleetReluGrad', { dy, x }) as tf.Tensor;
  assert.deepEqual(Array.from(dx.dataSync()), [10, 0, 30, 0, 50, 0, 70, 0]);
  tf.dispose([x, dy, dx]);
});
