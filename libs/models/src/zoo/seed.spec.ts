import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createModel, weightsFromBytes, weightsToBytes } from '..';

before(async () => {
  await tf.setBackend('cpu');
});

const digest = (m: tf.LayersModel) => createHash('sha256').update(weightsToBytes(m)).digest('hex');

test('the same seed gives the same weights, in this process and in another one', () => {
  const a = createModel('resnet8', { seed: 42 });
  const b = createModel('resnet8', { seed: 42 });
  const c = createModel('resnet8', { seed: 43 });
  const index = path.resolve(__dirname, '..', 'index.js');
  const script = `
    const tf = require('@tensorflow/tfjs');
    const m = require(${JSON.stringify(index)});
    tf.setBackend('cpu').then(() => {
      const model = m.createModel('resnet8', { seed: 42 });
      process.stdout.write('DIGEST ' + require('crypto').createHash('sha256').update(m.weightsToBytes(model)).digest('hex'));
    });`;
  const out = execFileSync(process.execPath, ['-e', script], { cwd: __dirname, encoding: 'utf8' });
  const other = /DIGEST ([0-9a-f]+)/.exec(out)?.[1];
  try {
    assert.equal(digest(a), digest(b));
    assert.equal(other, digest(a));
    assert.notEqual(digest(c), digest(a));
  } finally {
    [a, b, c].forEach((m) => m.dispose());
  }
});

test('Kaiming-normal fan_out convs, BN gamma 1 / beta 0, and gamma 0 for the last BN of each block with zeroInitLastBn', () => {
  const model = createModel('resnet50', { seed: 5, inputSize: 32, numClasses: 10, zeroInitLastBn: true });
  try {
    // layer3_0_conv2: 3×3, 256 filters: std √(2 / (3·3·256)).
    const w = model.getLayer('layer3_0_conv2').getWeights()[0];
    const data = Array.from(w.dataSync() as Float32Array);
    const mean = data.reduce((s, v) => s + v, 0) / data.length;
    const std = Math.sqrt(data.reduce((s, v) => s + (v - mean) ** 2, 0) / data.length);
    const want = Math.sqrt(2 / (9 * 256));
    assert.ok(Math.abs(std - want) / want < 0.02, `std ${std} vs ${want}`);
    assert.ok(Math.abs(mean) < want / 50);
    const gamma = (name: string) => Array.from(model.getLayer(name).getWeights()[0].dataSync());
    const beta = (name: string) => Array.from(model.getLayer(name).getWeights()[1].dataSync());
    assert.ok(gamma('layer2_1_bn3').every((v) => v === 0), 'last BN of a block starts at 0');
    assert.ok(gamma('layer2_1_bn2').every((v) => v === 1));
    assert.ok(gamma('layer2_0_downsample_bn').every((v) => v === 1), 'shortcut BN is not zeroed');
    assert.ok(beta('layer2_1_bn3').every((v) => v === 0));
  } finally {
    model.dispose();
  }
});

test('initWeights false leaves zeros (BN gamma 1) for weights that are loaded next', () => {
  const seeded = createModel('resnet8', { seed: 9 });
  const blank = createModel('resnet8', { initWeights: false });
  try {
    assert.ok(blank.getLayer('conv1').getWeights()[0].dataSync().every((v) => v === 0));
    assert.ok(blank.getLayer('fc').getWeights()[1].dataSync().every((v) => v === 0));
    assert.ok(blank.getLayer('bn1').getWeights()[0].dataSync().every((v) => v === 1));
    weightsFromBytes(blank, weightsToBytes(seeded));
    assert.equal(digest(blank), digest(seeded));
  } finally {
    [seeded, blank].forEach((m) => m.dispose());
  }
});
