import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { initBackend, tf, BackendUnavailableError } from './index';
import { dnnlAddon } from './onednn-addon';

test('auto selection: tensorflow when importable, then onednn when its addon loads, then wasm', async () => {
  const info = await initBackend({ env: {} });
  let nodeImportable = true;
  try {
    require.resolve('@tensorflow/tfjs-node');
  } catch {
    nodeImportable = false;
  }
  assert.equal(info.name, nodeImportable ? 'tensorflow' : dnnlAddon() ? 'onednn' : 'wasm');
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
    assert.match(err.message, /tensorflow, onednn, wasm, cpu/);
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

test('FLEET_BACKEND=onednn runs oneDNN on one thread unless FLEET_DNNL_THREADS says more', { skip: !dnnlAddon() && 'the oneDNN addon is not built' }, async () => {
  const info = await initBackend({ env: { FLEET_BACKEND: 'onednn' } });
  assert.equal(info.name, 'onednn');
  assert.equal(tf.getBackend(), 'onednn');
  assert.equal(info.threads, 1);
  assert.equal(dnnlAddon()?.threads(), 1);
  await assert.rejects(initBackend({ backend: 'onednn', env: { FLEET_DNNL_THREADS: 'two' } }), /FLEET_DNNL_THREADS=two/);
  await initBackend({ backend: 'cpu' });
  const two = await initBackend({ backend: 'onednn', env: { FLEET_DNNL_THREADS: '2' } });
  assert.equal(two.threads, 2);
  assert.equal(dnnlAddon()?.threads(), 2);
  // Tensors made on wasm are read on onednn without a move: the two names share one instance.
  await initBackend({ backend: 'wasm' });
  const x = tf.tensor1d([1, -2, 3]);
  await initBackend({ backend: 'onednn', env: {} });
  assert.deepEqual(Array.from(tf.relu(x).dataSync()), [1, 0, 3]);
  assert.equal(tf.engine().findBackend('onednn'), tf.engine().findBackend('wasm'));
  x.dispose();
});
