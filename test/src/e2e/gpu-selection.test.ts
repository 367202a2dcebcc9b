// The GPU path's selection, with real processes. There is no GPU (and no libtensorflow
// download) on this machine, so @tensorflow/tfjs-node-gpu cannot be installed here: a
// stand-in package of that name, put on NODE_PATH, registers a backend named `tensorflow`
// that computes with the cpu backend's kernels and says it runs on a GPU, as the real
// package's NodeJSKernelBackend does. What is checked is ours: that a worker picks it
// first when it is importable, reports it (backend, device, package) to the registry, and
// falls back in order. The real package's kernels were not run here.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { LocalCluster } from '@tensorfleet/cli';
import { startTestCluster } from '../support/test-cluster';

const repo = resolve(__dirname, '../../..');
const dnnlBuilt = existsSync(join(repo, 'libs/models/native/build/Release/fleet_dnnl.node'));

function standIn(dir: string, pkg: string, onGpu: boolean): void {
  const root = join(dir, 'node_modules', pkg);
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ name: pkg, version: '0.0.0-test', main: 'index.js' }));
  writeFileSync(join(root, 'index.js'), `
const tf = require('@tensorflow/tfjs');
for (const k of tf.getKernelsForBackend('cpu')) tf.registerKernel({ ...k, backendName: 'tensorflow' });
const cpu = tf.findBackendFactory('cpu');
tf.registerBackend('tensorflow', () => Object.assign(cpu(), { isUsingGpuDevice: ${onGpu} }), 3);
`);
}

/** initBackend() in a fresh process whose NODE_PATH holds the stand-ins of `dir`. */
function selectIn(dir: string): { name: string; device: string; package: string; sum: number[] } {
  const out = execFileSync(process.execPath, ['-e', `
const { initBackend, tf } = require('@tensorfleet/models');
initBackend().then(async (info) => {
  const sum = Array.from(await tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).data());
  console.log(JSON.stringify({ ...info, sum, active: tf.getBackend() }));
});`], { cwd: repo, encoding: 'utf8', env: { ...process.env, FLEET_BACKEND: '', NODE_PATH: `${join(dir, 'node_modules')}:${join(repo, 'node_modules')}` } });
  return JSON.parse(out.trim().split('\n').pop()!);
}

describe('GPU backend selection (stand-in package, no GPU here)', { timeout: 5 * 60_000 }, () => {
  let gpuDir: string;
  let cpuDir: string;
  let cluster: LocalCluster | undefined;

  before(() => {
    gpuDir = mkdtempSync(join(tmpdir(), 'fleet-gpu-'));
    standIn(gpuDir, '@tensorflow/tfjs-node-gpu', true);
    standIn(gpuDir, '@tensorflow/tfjs-node', false);
    cpuDir = mkdtempSync(join(tmpdir(), 'fleet-tfnode-'));
    standIn(cpuDir, '@tensorflow/tfjs-node', false);
  });

  after(async () => {
    await cluster?.stop();
    rmSync(gpuDir, { recursive: true, force: true });
    rmSync(cpuDir, { recursive: true, force: true });
  });

  it('tfjs-node-gpu goes first when importable and is reported as a GPU', () => {
    const info = selectIn(gpuDir);
    assert.deepEqual([info.name, info.device, info.package], ['tensorflow', 'gpu', '@tensorflow/tfjs-node-gpu']);
    assert.deepEqual(info.sum, [4, 6]);
  });

  it('without it, tfjs-node on the CPU; without both, onednn when its addon loads, else wasm', () => {
    const cpu = selectIn(cpuDir);
    assert.deepEqual([cpu.name, cpu.device, cpu.package], ['tensorflow', 'cpu', '@tensorflow/tfjs-node']);
    const none = selectIn(join(cpuDir, 'nothing-here'));
    assert.deepEqual([none.name, none.device], [dnnlBuilt ? 'onednn' : 'wasm', 'cpu']);
  });

  it('a worker process registers with the backend and device it selected', async () => {
    cluster = await startTestCluster({ name: 'gpu', workers: 1, workerEnv: { NODE_PATH: `${join(gpuDir, 'node_modules')}:${join(repo, 'node_modules')}`, FLEET_BACKEND: '' } });
    const deadline = Date.now() + 60_000;
    let ws = await cluster.client.listWorkers();
    while (ws.length < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      ws = await cluster.client.listWorkers();
    }
    assert.equal(ws.length, 1, `no worker registered (logs: ${cluster.logDir})`);
    assert.deepEqual([ws[0].backend, ws[0].device], ['tensorflow', 'gpu']);
  });
});
