import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { IMAGENET_MEAN, IMAGENET_STD, ModelIoError, createModel, deserializeLayersModel, predictImage, predictTopK, preprocessImage, serializeLayersModel } from '..';

before(async () => {
  await tf.setBackend('cpu');
});

const norm = (v: number, c: number) => (v / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];

async function image(width: number, height: number, pixel: (x: number, y: number) => [number, number, number], format: 'png' | 'jpeg'): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set(pixel(x, y), (y * width + x) * 3);
  const img = sharp(raw, { raw: { width, height, channels: 3 } });
  return format === 'png' ? img.png().toBuffer() : img.jpeg({ quality: 95 }).toBuffer();
}

test('preprocessImage: RGB, (x/255 - mean)/std, NHWC at inputSize (PNG and JPEG)', async () => {
  const rgb: [number, number, number] = [120, 200, 30];
  for (const [format, tol] of [['png', 1e-5], ['jpeg', 4 / 255 / 0.224]] as const) {
    const { data, shape } = await preprocessImage(await image(300, 200, () => rgb, format), { inputSize: 64 });
    assert.deepEqual(shape, [1, 64, 64, 3]);
    for (let i = 0; i < data.length; i++) assert.ok(Math.abs(data[i] - norm(rgb[i % 3], i % 3)) < tol, `${format}[${i}] ${data[i]}`);
  }
});

test('preprocessImage keeps the centre: shorter side to inputSize/0.875, centre crop', async () => {
  // 400×200, left half red, right half green: resized to 512×256, cropped to columns 144..367 of
  // the resized image; the colour edge (column 256) lands at crop column 112.
  const png = await image(400, 200, (x) => (x < 200 ? [255, 0, 0] : [0, 255, 0]), 'png');
  const { data } = await preprocessImage(png, { inputSize: 224 });
  const px = (row: number, col: number) => Array.from(data.subarray((row * 224 + col) * 3, (row * 224 + col) * 3 + 3));
  const close = (a: number[], b: number[]) => a.every((v, c) => Math.abs(v - norm(b[c], c)) < 0.05);
  assert.ok(close(px(100, 100), [255, 0, 0]), `left ${px(100, 100)}`);
  assert.ok(close(px(100, 124), [0, 255, 0]), `right ${px(100, 124)}`);
  assert.ok(close(px(0, 0), [255, 0, 0]) && close(px(223, 223), [0, 255, 0]));
});

test('preprocessImage refuses bytes that are not an image', async () => {
  await assert.rejects(preprocessImage(new TextEncoder().encode('not an image')), (e: unknown) => e instanceof ModelIoError && e.code === 'BAD_FORMAT');
});

test('predictTopK: softmax of the logits, sorted, with class names', () => {
  const input = tf.input({ shape: [2, 2, 3] });
  const dense = tf.layers.dense({ units: 5 });
  const model = tf.model({ inputs: input, outputs: dense.apply(tf.layers.flatten().apply(input)) as tf.SymbolicTensor });
  const logits = [1, 3, 2, 0, -1];
  dense.setWeights([tf.zeros([12, 5]), tf.tensor1d(logits)]);
  const z = logits.reduce((s, l) => s + Math.exp(l), 0);
  const top = predictTopK(model, new Float32Array(12), 3, ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(top.map((p) => [p.classIndex, p.className]), [[1, 'b'], [2, 'c'], [0, 'a']]);
  top.forEach((p) => assert.ok(Math.abs(p.probability - Math.exp(logits[p.classIndex]) / z) < 1e-6));
  assert.equal(predictTopK(model, tf.zeros([1, 2, 2, 3]), 1)[0].className, 'class 1');
  assert.throws(() => predictTopK(model, new Float32Array(5)), /preprocess to inputSize 2/);
  model.dispose();
});

test('predictImage uses the export metadata (class names, input size)', async () => {
  const model = createModel('resnet8', { seed: 1 });
  const classNames = Array.from({ length: 10 }, (_, i) => `label${i}`);
  const loaded = await deserializeLayersModel(await serializeLayersModel(model, { classNames }));
  try {
    const png = await image(48, 40, (x, y) => [(x * 5) % 256, (y * 7) % 256, 128], 'png');
    const top = await predictImage(loaded, png);
    assert.equal(top.length, 5);
    assert.ok(top.every((p, i) => p.className === `label${p.classIndex}` && (i === 0 || top[i - 1].probability >= p.probability)));
    const { data } = await preprocessImage(png, { inputSize: 32 });
    assert.deepEqual(top, predictTopK(model, data, 5, classNames));
  } finally {
    [model, loaded].forEach((m) => m.dispose());
  }
});
