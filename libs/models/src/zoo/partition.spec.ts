import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  ALEXNET_PAPER_EXCHANGES, ALEXNET_PAPER_SECTIONS, alexnetColumnOwner, countParams, createModel, createModelPart,
  describeModel, minInputSize, modelSections, sectionsOwner, type ModelPart,
} from '..';
import { relError, values } from '../backend/testing';

before(async () => {
  await tf.setBackend('cpu');
});

const weightsByName = (m: tf.LayersModel) => new Map(m.weights.map((w) => [w.originalName, w.read().dataSync() as Float32Array]));

/** Every weight of the part is the same-named weight of the whole model, bit for bit. */
function assertSameWeights(part: tf.LayersModel, whole: Map<string, Float32Array>): void {
  for (const w of part.weights) {
    const want = whole.get(w.originalName);
    assert.ok(want, `part weight ${w.originalName} is not in the whole model`);
    assert.deepEqual(w.read().dataSync(), want, `part weight ${w.originalName} differs from the whole model's`);
  }
}

/** Runs parts in order, each reading its inputs by name from what earlier parts produced. */
function chain(parts: ModelPart[], image: tf.Tensor): tf.Tensor {
  const produced = new Map<string, tf.Tensor>([['input', image]]);
  let last: tf.Tensor = image;
  for (const p of parts) {
    const ins = p.inputs.map((i) => {
      const t = produced.get(i.name);
      assert.ok(t, `part reads ${i.name}, which no earlier part produced`);
      return t;
    });
    const out = p.model.apply(ins.length === 1 ? ins[0] : ins, { training: false }) as tf.Tensor | tf.Tensor[];
    const outs = Array.isArray(out) ? out : [out];
    p.outputs.forEach((o, k) => produced.set(o.name, outs[k]));
    last = outs[outs.length - 1];
  }
  return last;
}

for (const [name, inputSize, cuts] of [
  ['resnet8', 32, [[0, 2], [2, 5]]],
  ['resnet20', 32, [[0, 4], [4, 7], [7, 11]]],
  ['resnet18', 64, [[0, 3], [3, 10]]],
  ['seresnet50', 64, [[0, 7], [7, 18]]],
  ['resnet50d', 64, [[0, 1], [1, 17], [17, 18]]],
  ['resnext50_32x4d', 64, [[0, 9], [9, 18]]],
] as const) {
  test(`${name} cut at block boundaries: each stage holds only its weights, equal to the whole model's, and the stages chained give its logits`, () => {
    const opts = { inputSize, numClasses: 5, seed: 7 };
    const sections = modelSections(name, opts);
    assert.equal(sections[0].name, 'stem');
    assert.equal(sections[sections.length - 1].name, 'head');
    assert.equal(sections.reduce((a, s) => a + s.params, 0), describeModel(name, opts).params, 'sections cover every parameter');
    assert.equal(cuts[cuts.length - 1][1], sections.length, 'the test cuts cover every section');
    const whole = createModel(name, opts);
    const parts = cuts.map(([a, b], k) => createModelPart(name, opts, sectionsOwner(sections.slice(a, b).map((s) => s.name)), `stage${k}`));
    try {
      const byName = weightsByName(whole);
      let params = 0;
      parts.forEach((p, k) => {
        assertSameWeights(p.model, byName);
        params += countParams(p.model);
        const expect = sections.slice(cuts[k][0], cuts[k][1]).reduce((a, s) => a + s.params, 0);
        assert.equal(countParams(p.model), expect, `stage ${k} holds the parameters of its sections only`);
        assert.equal(p.inputs.length, 1, `stage ${k} reads one tensor`);
        assert.equal(p.outputs.length, 1, `stage ${k} produces one tensor`);
      });
      assert.equal(params, countParams(whole));
      assert.equal(parts[0].inputs[0].name, 'input');
      assert.equal(parts[parts.length - 1].outputs[0].name, 'fc');
      const x = tf.tensor4d(values(2 * inputSize * inputSize * 3, 3), [2, inputSize, inputSize, 3]);
      const got = chain(parts, x).dataSync();
      const want = (whole.predict(x) as tf.Tensor).dataSync();
      assert.ok(relError(got, want) < 1e-6, `chained stages vs whole model: ${relError(got, want)}`);
    } finally {
      whole.dispose();
      parts.forEach((p) => p.model.dispose());
    }
  });
}

test('alexnet_paper columns: per section, each column builds its own layers and the shared ones; exchanging at ALEXNET_PAPER_EXCHANGES gives the whole model', () => {
  const inputSize = minInputSize('alexnet_paper');
  const opts = { inputSize, numClasses: 6, seed: 3 };
  const whole = createModel('alexnet_paper', opts);
  const segments = ([0, 1] as const).map((c) => ALEXNET_PAPER_SECTIONS.map((s) => createModelPart('alexnet_paper', opts, alexnetColumnOwner(c, s), `col${c}_${s}`)));
  try {
    const byName = weightsByName(whole);
    for (const col of segments) for (const seg of col) assertSameWeights(seg.model, byName);
    // Every weight of a column's layers is in that column only; fc8 is held by both.
    const names = segments.map((col) => new Set(col.flatMap((s) => s.model.weights.map((w) => w.originalName))));
    for (const n of names[0]) if (names[1].has(n)) assert.match(n, /^fc8\//, `${n} is held by both columns`);
    const fc8 = countParams(whole) - [...whole.layers].filter((l) => !l.name.startsWith('fc8')).reduce((a, l) => a + l.countParams(), 0);
    const perColumn = segments.map((col) => col.reduce((a, s) => a + countParams(s.model), 0));
    assert.deepEqual(perColumn, [0, 1].map(() => (countParams(whole) - fc8) / 2 + fc8), 'half of the columns each, and fc8 whole');
    // Each section after the first reads both columns' halves of the exchange before it, in column order.
    const halves = ['pool2', 'flatten', 'drop6', 'drop7'];
    segments.forEach((col, c) =>
      col.forEach((seg, k) => {
        const reads = k === 0 ? ['input'] : [0, 1].map((j) => `col${j}_${halves[k - 1]}`);
        assert.deepEqual(seg.inputs.map((i) => i.name), reads, `column ${c}, section ${ALEXNET_PAPER_SECTIONS[k]}${k ? ` (after ${ALEXNET_PAPER_EXCHANGES[k - 1]})` : ''}`);
        assert.deepEqual(seg.outputs.map((o) => o.name), [k < halves.length ? `col${c}_${halves[k]}` : 'fc8']);
      }),
    );
    // Forward, column by column, section by section: each column sends its half on.
    const x = tf.tensor4d(values(2 * inputSize * inputSize * 3, 5), [2, inputSize, inputSize, 3]);
    const produced = new Map<string, tf.Tensor>([['input', x]]);
    let logits: tf.Tensor[] = [];
    ALEXNET_PAPER_SECTIONS.forEach((_, k) => {
      const outs = segments.map((col) => {
        const seg = col[k];
        const ins = seg.inputs.map((i) => produced.get(i.name)!);
        const out = seg.model.apply(ins.length === 1 ? ins[0] : ins, { training: false }) as tf.Tensor | tf.Tensor[];
        return { seg, outs: Array.isArray(out) ? out : [out] };
      });
      for (const { seg, outs: o } of outs) seg.outputs.forEach((p, j) => produced.set(p.name, o[j]));
      if (k === ALEXNET_PAPER_SECTIONS.length - 1) logits = outs.map((o) => o.outs[o.outs.length - 1]);
    });
    const want = (whole.predict(x) as tf.Tensor).dataSync();
    for (const [c, l] of logits.entries()) assert.ok(relError(l.dataSync(), want) < 1e-6, `column ${c}'s logits vs the whole model: ${relError(l.dataSync(), want)}`);
  } finally {
    whole.dispose();
    segments.flat().forEach((s) => s.model.dispose());
  }
});

test('a part that owns no layer is an error naming the part', () => {
  assert.throws(() => createModelPart('resnet8', { numClasses: 3 }, { owns: () => false }, 'empty'), /part empty owns no layer/);
});
