import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createModel, initBackend, resolveOptions, tensorsToBytes } from '..';
import { onednnSkip } from '../backend/testing';

// The independent reference: torchvision itself, fed the zoo's weights. Needs PyTorch and
// torchvision for the system python (Debian: apt-get install python3-torchvision); skipped without,
// unless FLEET_REQUIRE_TORCH=1 (CI installs it and sets that, so a broken install fails loudly).
const PYTHON = process.env.TF_TEST_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, '../../src/zoo/parity/torchvision_parity.py');
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { stdio: 'ignore' }).status === 0;
const requireTorch = process.env.FLEET_REQUIRE_TORCH === '1';

// One per code path: basic block + ImageNet stem, grouped bottleneck, CIFAR stem with projection
// shortcuts, AlexNet with the adaptive pool stretching a 2×2 map to 6×6 (torchvision's modules);
// SE and ResNet-D (deep stem, ceil-mode average-pool shortcut, at an odd size) follow timm's
// modules, written out in the script since timm is not packaged here.
// alexnet_paper is checked against one torch module with groups=2 convs and LRN per half, fed
// inputs ×100 so that the LRN's α term is not negligible.
const CASES: [string, number, number][] = [
  ['resnet18', 64, 1], ['resnext50_32x4d', 32, 1], ['resnet20', 32, 1], ['alexnet', 96, 1], ['seresnet50', 32, 1], ['resnet50d', 45, 1], ['alexnet_paper', 99, 100],
];

const noTorch = hasTorch || requireTorch ? false : `no torch/torchvision for ${PYTHON}`;

// On cpu (the reference kernels) and on onednn (oneDNN's convolutions; wasm's kernels are held
// to cpu by their own specs).
for (const backend of ['cpu', 'onednn'] as const) {
  test(`zoo models on ${backend} compute what torchvision (and timm-style SE / ResNet-D) compute with the same weights`, { skip: noTorch || (backend === 'onednn' && onednnSkip()) }, async (t) => {
    await initBackend({ backend });
    await parity(t);
  });
}

async function parity(t: { diagnostic(msg: string): void }): Promise<void> {
  assert.ok(hasTorch, `FLEET_REQUIRE_TORCH=1 but ${PYTHON} cannot import torch and torchvision: apt-get install python3-torchvision`);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'zoo-parity-'));
  try {
    const cases = [];
    for (const [name, inputSize, scale] of CASES) {
      const opts = { seed: 3, inputSize, numClasses: 10 };
      const model = createModel(name, opts);
      // Batch-norm state off its initial values, so that gamma/beta/mean/variance are all checked.
      model.layers.filter((l) => l.getClassName() === 'BatchNormalization').forEach((l, i) => {
        const [g] = l.getWeights();
        l.setWeights([
          tf.randomUniform(g.shape, 0.5, 1.5, 'float32', 4 * i), tf.randomNormal(g.shape, 0, 0.1, 'float32', 4 * i + 1),
          tf.randomNormal(g.shape, 0, 0.1, 'float32', 4 * i + 2), tf.randomUniform(g.shape, 0.5, 2, 'float32', 4 * i + 3),
        ]);
      });
      const x = tf.randomUniform([2, inputSize, inputSize, 3], -scale, scale, 'float32', 7);
      const named: Record<string, tf.Tensor> = Object.fromEntries(model.weights.map((w) => [w.originalName, w.read()]));
      const y = model.predict(x) as tf.Tensor;
      const file = path.join(dir, `${name}.bin`);
      await fs.writeFile(file, tensorsToBytes({ ...named, __input: x, __output: y }));
      cases.push({ name, file, options: resolveOptions(name, opts) });
      [model, x, y].forEach((t) => t.dispose());
    }
    await fs.writeFile(path.join(dir, 'cases.json'), JSON.stringify(cases));
    const out = execFileSync(PYTHON, [SCRIPT, path.join(dir, 'cases.json')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const results = out.trim().split('\n').map((l) => JSON.parse(l) as { name: string; maxAbsDiff: number; maxAbs: number });
    assert.deepEqual(results.map((r) => r.name), CASES.map(([n]) => n));
    for (const r of results) {
      t.diagnostic(`${r.name}: max |torch - zoo| / max |torch| = ${(r.maxAbsDiff / r.maxAbs).toExponential(2)}`);
      assert.ok(r.maxAbs > 1e-3, `${r.name}: outputs too small to compare`);
      assert.ok(r.maxAbsDiff / r.maxAbs < 1e-4, `${r.name}: max |torch - zoo| = ${r.maxAbsDiff} of ${r.maxAbs}`);
    }
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}
