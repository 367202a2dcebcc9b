import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelError, countMacs, countParams, createModel, describeModel, listModels, modelFamily, modelNames } from '..';

// Trainable parameters and multiply-adds at 224×224 as published by torchvision (weights tables,
// "GFLOPS" = conv + linear MACs) and by timm for seresnet50 / resnet50d; the paper for alexnet_paper.
const REFERENCE: Record<string, { params: number; gmacs?: number }> = {
  resnet18: { params: 11_689_512, gmacs: 1.814 },
  resnet34: { params: 21_797_672, gmacs: 3.664 },
  resnet50: { params: 25_557_032, gmacs: 4.089 },
  resnet101: { params: 44_549_160, gmacs: 7.801 },
  resnet152: { params: 60_192_808, gmacs: 11.514 },
  resnext50_32x4d: { params: 25_028_904, gmacs: 4.23 },
  resnext101_32x8d: { params: 88_791_336, gmacs: 16.41 },
  wide_resnet50_2: { params: 68_883_240, gmacs: 11.4 },
  seresnet50: { params: 28_088_024 },
  resnet50d: { params: 25_576_264 },
  alexnet: { params: 61_100_840, gmacs: 0.714 },
  alexnet_paper: { params: 60_965_224 },
};

const REQUIRED = [
  'resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d', 'resnext101_32x8d', 'wide_resnet50_2',
  'seresnet50', 'resnet50d', 'resnet20', 'resnet32', 'resnet44', 'resnet56', 'resnet110', 'alexnet', 'alexnet_paper', 'resnet8',
];

test('the registry holds every required model', () => {
  for (const name of REQUIRED) assert.ok(modelNames().includes(name), name);
});

test('parameter counts equal torchvision/timm/paper', () => {
  for (const [name, ref] of Object.entries(REFERENCE)) assert.equal(countParams(name), ref.params, name);
});

test('multiply-adds within 1% of torchvision at 224', () => {
  for (const [name, ref] of Object.entries(REFERENCE)) {
    if (ref.gmacs === undefined) continue;
    const g = countMacs(name, 224) / 1e9;
    assert.ok(Math.abs(g - ref.gmacs) / ref.gmacs < 0.01, `${name}: ${g.toFixed(4)} G vs ${ref.gmacs} G`);
  }
});

test('AlexNet MACs by hand: conv and dense terms of the torchvision form', () => {
  const conv = (hw: number, cout: number, k: number, cin: number) => hw * hw * cout * k * k * cin;
  const expected = conv(55, 64, 11, 3) + conv(27, 192, 5, 64) + conv(13, 384, 3, 192) + conv(13, 256, 3, 384) + conv(13, 256, 3, 256)
    + 9216 * 4096 + 4096 * 4096 + 4096 * 1000;
  assert.equal(countMacs('alexnet', 224), expected);
});

test('CIFAR ResNets: 6n+2 layers, 16/32/64 filters, option A has the paper parameter counts', () => {
  // He et al. 2015, Table 6: ResNet-20 0.27M, -32 0.46M, -44 0.66M, -56 0.85M, -110 1.7M (option A).
  const paper: Record<string, number> = { resnet20: 0.27e6, resnet32: 0.46e6, resnet44: 0.66e6, resnet56: 0.85e6, resnet110: 1.7e6 };
  for (const [name, p] of Object.entries(paper)) {
    const a = countParams(name, { shortcut: 'A' });
    assert.ok(Math.abs(a - p) / p < 0.02, `${name}: ${a}`);
    // Option B adds two 1×1 projections with BN: 16·32 + 2·32 + 32·64 + 2·64.
    assert.equal(countParams(name) - a, 16 * 32 + 64 + 32 * 64 + 128, name);
    const d = describeModel(name);
    assert.deepEqual(d.outputShape, [10]);
    const convs = d.layers.filter((l) => l.kind === 'conv' && !l.name.includes('downsample')).length;
    assert.equal(convs + 1, Number(name.slice(6)), `${name} weighted layers`);
  }
  assert.equal(countParams('resnet20', { shortcut: 'A' }), 269_722);
});

test('listModels is fast, computed without weights, and reports defaults', () => {
  const t0 = performance.now();
  const models = listModels();
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `listModels took ${ms} ms`);
  const r50 = models.find((m) => m.name === 'resnet50')!;
  assert.deepEqual(
    { family: r50.family, params: r50.params, defaultInputSize: r50.defaultInputSize, numClasses: r50.numClasses },
    { family: 'resnet', params: 25_557_032, defaultInputSize: 224, numClasses: 1000 },
  );
  const r20 = models.find((m) => m.name === 'resnet20')!;
  assert.equal(r20.defaultInputSize, 32);
  assert.equal(r20.numClasses, 10);
  assert.equal(models.find((m) => m.name === 'alexnet_paper')!.defaultInputSize, 227);
  for (const m of models) assert.equal(modelFamily(m.name), m.family, `modelFamily(${m.name})`);
  assert.throws(() => modelFamily('resnet9000'), /unknown model/);
  // torchvision AlexNet: 11×11/4 pad 2, three 3×3/2 pools: 63 → 15 → 7 → 3 → 1.
  assert.equal(models.find((m) => m.name === 'alexnet')!.minInputSize, 63);
  assert.throws(() => describeModel('alexnet', { inputSize: 62 }), /INPUT_TOO_SMALL|use a larger inputSize/);
});

test('numClasses and inputSize change the head and MACs, not the body', () => {
  assert.equal(countParams('resnet50', { numClasses: 10 }), 25_557_032 - 2048 * 990 - 990);
  // AlexNet's adaptive pool keeps the 6×6×256 classifier input at any size.
  assert.equal(countParams('alexnet', { inputSize: 96 }), 61_100_840);
  assert.ok(countMacs('resnet50', 112) < countMacs('resnet50', 224) / 3.5);
});

test("a caller's option that conflicts with the variant is an error", () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof ModelError);
      return e.code;
    }
    return 'none';
  };
  assert.equal(code(() => createModel('resnet50', { cardinality: 32 })), 'OPTION_CONFLICT');
  assert.equal(code(() => createModel('resnext50_32x4d', { widthPerGroup: 8 })), 'OPTION_CONFLICT');
  assert.equal(code(() => createModel('resnet18', { block: 'bottleneck' })), 'OPTION_CONFLICT');
  assert.equal(code(() => createModel('alexnet', { form: 'paper' })), 'OPTION_CONFLICT');
  assert.equal(code(() => describeModel('resnet50', { layers: [3, 4, 6, 3] })), 'none'); // same value: fine
  assert.equal(code(() => createModel('resnet50', { groups: 2 })), 'UNKNOWN_OPTION');
  assert.equal(code(() => createModel('resnet1000')), 'UNKNOWN_MODEL');
  assert.equal(code(() => describeModel('alexnet', { inputSize: 32 })), 'INPUT_TOO_SMALL');
  assert.equal(code(() => describeModel('resnet18', { numClasses: 0 })), 'INVALID_OPTION');
  assert.equal(code(() => describeModel('resnet20', { shortcut: 'C' })), 'INVALID_OPTION');
});
