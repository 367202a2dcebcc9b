import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { parseTrainBenchArgs } from './cli';
import { DEFAULT_TRAIN_BENCH, formatTrainBench, runTrainBench } from './train-bench';
import { pytorchAvailable } from './pytorch-step';
import { loadableBackends } from '../backend';

test('runTrainBench measures full and micro-batched steps and reports them per row', async () => {
  const seen: string[] = [];
  const rows = await runTrainBench({
    models: [
      { name: 'resnet8', inputSize: 16, batchSize: 4 },
      { name: 'resnet8', inputSize: 16, batchSize: 4, microBatch: 2 },
    ],
    steps: 1,
    warmup: 0,
    backend: 'wasm',
    pytorch: false,
    profile: true,
    onRow: (r) => seen.push(`${r.model}/${r.microBatch}`),
  });
  assert.deepEqual(seen, ['resnet8/4', 'resnet8/2']);
  for (const r of rows) {
    assert.equal(r.backend, 'wasm');
    assert.equal(r.batch, 4);
    // The memory figure comes from the first warm-up step; there was none.
    assert.equal(r.peakBytes, undefined);
    assert.ok(r.msPerStep > 0 && r.cpuMsPerStep > 0);
    assert.ok(Math.abs(r.imagesPerSec - (4 * 1000) / r.msPerStep) < 0.1 + r.imagesPerSec * 0.01);
    assert.ok(r.forwardMs! > 0 && r.forwardMs! <= r.msPerStep + r.forwardMs!);
    assert.ok(r.kernels!.some((k) => k.name === 'Conv2DBackpropFilter' && k.calls > 0));
  }
  // A micro-batched step runs twice as many forward/backward passes.
  const calls = (i: number) => rows[i].kernels!.find((k) => k.name === 'FusedConv2D')!.calls;
  assert.equal(calls(1), 2 * calls(0));
  assert.match(formatTrainBench(rows), /resnet8\s+16\s+4=2×2/);
});

test('runTrainBench rejects a micro-batch that does not divide the batch', async () => {
  await assert.rejects(
    runTrainBench({ models: [{ name: 'resnet8', inputSize: 16, batchSize: 4, microBatch: 3 }], steps: 1, warmup: 0, pytorch: false }),
    /microBatch 3 must divide batchSize 4/,
  );
});

test('the stock wasm baseline runs alone: onednn would register every kernel on the shared instance', async () => {
  await assert.rejects(
    runTrainBench({ models: [{ name: 'resnet8', inputSize: 16, batchSize: 2 }], backends: ['onednn', 'wasm'], kernels: 'minimal', pytorch: false }),
    /kernels 'minimal' is the stock wasm baseline; benchmark it with backends \['wasm'\] alone/,
  );
});

test('CLI arguments: models, micro-batches, flags; defaults are the issue list', () => {
  const o = parseTrainBenchArgs(['--json', '--steps', '2', '--kernels', 'minimal', '--model', 'resnet50@224:16/2', '--model', 'resnet20@32:64']);
  assert.equal(o.json, true);
  assert.equal(o.steps, 2);
  assert.equal(o.kernels, 'minimal');
  assert.deepEqual(o.models, [
    { name: 'resnet50', inputSize: 224, batchSize: 16, microBatch: 2 },
    { name: 'resnet20', inputSize: 32, batchSize: 64 },
  ]);
  assert.throws(() => parseTrainBenchArgs(['--model', 'resnet50']), /NAME@SIZE:BATCH/);
  assert.throws(() => parseTrainBenchArgs(['--kernels', 'some']), /all or minimal/);
  assert.deepEqual(parseTrainBenchArgs(['--backends', 'onednn,wasm', '--rounds', '2', '--no-pytorch']), { json: false, backends: ['onednn', 'wasm'], rounds: 2, pytorch: false });
  assert.throws(() => parseTrainBenchArgs(['--backends', 'onednn,cuda']), /cuda is not a backend/);
  assert.deepEqual(
    DEFAULT_TRAIN_BENCH.map((m) => `${m.name}@${m.inputSize}:${m.batchSize}`),
    ['resnet20@32:64', 'resnet18@224:16', 'alexnet@224:16', 'resnet50@224:16'],
  );
});

test('every backend, then PyTorch, per model and round, with the ratio against the same round', { skip: !pytorchAvailable() && 'no torch for the python (FLEET_PYTHON)' }, async () => {
  const backends = loadableBackends().filter((b) => b === 'onednn' || b === 'wasm');
  const rows = await runTrainBench({ models: [{ name: 'resnet8', inputSize: 16, batchSize: 4 }], steps: 1, warmup: 1, backends, rounds: 2, split: false });
  assert.deepEqual(rows.map((r) => `${r.round}:${r.backend}`), [1, 2].flatMap((n) => [...backends, 'pytorch'].map((b) => `${n}:${b}`)));
  for (const r of rows) {
    assert.ok(r.imagesPerSec > 0 && r.peakBytes! > 0, `${r.backend}: ${r.imagesPerSec} img/s, ${r.peakBytes} bytes`);
    if (r.backend === 'pytorch') continue;
    const torch = rows.find((p) => p.backend === 'pytorch' && p.round === r.round)!;
    assert.ok(Math.abs(r.vsPytorch! - r.imagesPerSec / torch.imagesPerSec) < 0.01);
  }
  assert.match(formatTrainBench(rows), /torch [\d.]+\S*\/cpu×1 .* 1\.00×/);
});

test('a model the PyTorch script lacks says so instead of a ratio', { skip: !pytorchAvailable() && 'no torch for the python (FLEET_PYTHON)' }, async () => {
  const rows = await runTrainBench({ models: [{ name: 'resnext50_32x4d', inputSize: 16, batchSize: 2 }], steps: 1, warmup: 0, backend: 'wasm', split: false });
  assert.equal(rows.length, 1);
  assert.equal(rows[0].vsPytorch, undefined);
  assert.match(rows[0].pytorchError!, /no PyTorch model for resnext50_32x4d/);
  assert.match(formatTrainBench(rows), /no PyTorch figure: no PyTorch model for resnext50_32x4d/);
});
