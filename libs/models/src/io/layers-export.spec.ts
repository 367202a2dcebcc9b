import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  AdaptiveAvgPool2D, LocalResponseNorm, ModelIoError, PadShortcut, createModel, deserializeLayersModel, exportLayersModel,
  loadExportedModel, registerModel, resnetBuilder, serializeLayersModel, weightsToBytes,
} from '..';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'zoo-export-'));
});
after(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

// A small model with every ResNet option that adds a layer of its own: grouped convs (ResNeXt),
// squeeze-and-excitation, average-pool shortcuts and the deep stem (ResNet-D).
registerModel('test_resnext_se_d', resnetBuilder, {
  block: 'bottleneck', layers: [1, 1], widths: [8, 16], stem: 'deep', stemWidth: 8, cardinality: 4, widthPerGroup: 32,
  seReduction: 4, avgDown: true, numClasses: 6, inputSize: 32, description: 'test only',
});

function sameOutputs(a: tf.LayersModel, b: tf.LayersModel, x: tf.Tensor): void {
  const [pa, pb] = tf.tidy(() => [a, b].map((m) => Array.from((m.predict(x) as tf.Tensor).dataSync())));
  assert.deepEqual(pb, pa);
}

test('export → tf.loadLayersModel gives the same outputs, with its metadata (resnet8)', async () => {
  const model = createModel('resnet8', { seed: 3 });
  const out = path.join(dir, 'resnet8');
  const meta = { modelName: 'resnet8', classNames: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'], inputSize: 32 };
  const { files } = await exportLayersModel(model, out, meta);
  assert.deepEqual(files.map((f) => path.basename(f)).sort(), ['model.json', 'weights.bin']);
  const json = JSON.parse(await fs.readFile(path.join(out, 'model.json'), 'utf8'));
  assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
  const loaded = await loadExportedModel(out);
  const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 1);
  try {
    sameOutputs(model, loaded, x);
    assert.deepEqual(weightsToBytes(loaded), weightsToBytes(model));
    assert.deepEqual(loaded.getUserDefinedMetadata(), meta);
  } finally {
    [model, loaded, x].forEach((t) => t.dispose());
  }
});

test('custom layers (GroupedConv2D, SE, avg-down, LRN, adaptive pool, option-A shortcut) survive export', async () => {
  const zoo = createModel('test_resnext_se_d', { seed: 4 });
  const input = tf.input({ shape: [9, 9, 4] });
  let y = new LocalResponseNorm({ name: 'lrn', size: 5, alpha: 1e-4, beta: 0.75, k: 2 }).apply(input) as tf.SymbolicTensor;
  y = new PadShortcut({ name: 'pad', stride: 2, channels: 8 }).apply(y) as tf.SymbolicTensor;
  y = new AdaptiveAvgPool2D({ name: 'adaptive', size: 3 }).apply(y) as tf.SymbolicTensor;
  const custom = tf.model({ inputs: input, outputs: y });
  const x1 = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 2);
  const x2 = tf.randomUniform([2, 9, 9, 4], -10, 10, 'float32', 3);
  const loaded: tf.LayersModel[] = [];
  try {
    for (const [m, x, name] of [[zoo, x1, 'zoo'], [custom, x2, 'custom']] as const) {
      await exportLayersModel(m, path.join(dir, name));
      const back = await loadExportedModel(path.join(dir, name));
      loaded.push(back);
      sameOutputs(m, back, x);
      const classNames = back.layers.map((l) => l.getClassName());
      if (name === 'zoo') assert.ok(classNames.includes('GroupedConv2D') && classNames.includes('Multiply') && classNames.includes('AveragePooling2D'));
      else assert.deepEqual(classNames.slice(1), ['LocalResponseNorm', 'PadShortcut', 'AdaptiveAvgPool2D']);
    }
  } finally {
    [zoo, custom, x1, x2, ...loaded].forEach((t) => t.dispose());
  }
});

test('serializeLayersModel / deserializeLayersModel work on bytes (for object storage)', async () => {
  const model = createModel('resnet8', { seed: 5, numClasses: 3 });
  const s = await serializeLayersModel(model);
  const back = await deserializeLayersModel({ modelJson: s.modelJson, weightsBin: new Uint8Array(s.weightsBin) });
  const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 6);
  try {
    sameOutputs(model, back, x);
    assert.equal(s.weightsBin.length, model.weights.reduce((n, w) => n + w.shape.reduce((a: number, b) => a * (b ?? 1), 1), 0) * 4);
  } finally {
    [model, back, x].forEach((t) => t.dispose());
  }
});

test('loading a folder without model.json says what to pass', async () => {
  await assert.rejects(loadExportedModel(path.join(dir, 'nothing')), (e: unknown) => e instanceof ModelIoError && e.code === 'NOT_FOUND');
});

test('a model.json naming weight files outside its folder (../, or a link out) is refused, not read', async () => {
  const model = createModel('resnet8', { seed: 3 });
  const good = path.join(dir, 'confined-good');
  await exportLayersModel(model, good, { modelName: 'resnet8', classNames: [], inputSize: 32 });
  model.dispose();
  // The same model with its weights one folder up: a model.json can point anywhere it likes.
  const evil = path.join(dir, 'confined-evil');
  await fs.mkdir(evil);
  const json = JSON.parse(await fs.readFile(path.join(good, 'model.json'), 'utf8'));
  json.weightsManifest[0].paths = ['../confined-good/weights.bin'];
  await fs.writeFile(path.join(evil, 'model.json'), JSON.stringify(json));
  await assert.rejects(loadExportedModel(evil), (e: unknown) => e instanceof ModelIoError && e.code === 'OUTSIDE_BASE' && /weightsManifest\.paths/.test(e.message));
  json.weightsManifest[0].paths = ['weights.bin'];
  await fs.writeFile(path.join(evil, 'model.json'), JSON.stringify(json));
  await fs.symlink(path.join(good, 'weights.bin'), path.join(evil, 'weights.bin'));
  await assert.rejects(loadExportedModel(evil), (e: unknown) => e instanceof ModelIoError && e.code === 'OUTSIDE_BASE' && /symbolic link/.test(e.message));
  // The untouched folder still loads: the check refuses only what leaves it.
  (await loadExportedModel(good)).dispose();
});
