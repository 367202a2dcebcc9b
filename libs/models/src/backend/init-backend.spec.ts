import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { initBackend, tf, BackendUnavailableError } from './index';

test('auto selection falls back to wasm when tfjs-node is not importable here', async () => {
  const info = await initBackend({ env: {} });
  let nodeImportable = true;
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    nodeImportable = false;
  }
  assert.equal(info.name, nodeImportable ? 'tensorflow' : 'wasm');
  assert.equal(tf.getBackend(), info.name);
  assert.equal(info.device, 'cpu');
  assert.ok(info.threads >= 1);
});

test('FLEET_BACKEND=cpu overrides and the backend computes', async () => {
  const info = await initBackend({ env: { FLEET_BACKEND: 'cpu' } });
  assert.deepEqual(info, { name: 'cpu', device: 'cpu', package: '@tensorflow/tfjs-backend-cpu', threads: 1 });
  assert.equal(tf.getBackend(), 'cpu');
  const y = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4]));
  assert.deepEqual(Array.from(await y.data()), [4, 6]);
  await initBackend({ backend: 'wasm' });
  assert.equal(tf.getBackend(), 'wasm');
});

test('an unknown FLEET_BACKEND is rejected with a message naming the choices', async () => {
  await assert.rejects(initBackend({ env: { FLEET_BACKEND: 'cuda' } }), (err: Error) => {
    assert.ok(err instanceof BackendUnavailableError);
    assert.match(err.message, /tensorflow, wasm, cpu/);
    return true;
  });
});

test('an explicit tensorflow request fails loudly when the package is missing', async (t) => {
  try {
    require.resolve('@tensorflow/tfjs-node');
    t.skip('tfjs-node is installed here');
    return;
  } catch {
    // expected on hosts without libtensorflow
  }
  await assert.rejects(initBackend({ backend: 'tensorflow' }), /tfjs-node-gpu not importable.*tfjs-node not importable/);
});
