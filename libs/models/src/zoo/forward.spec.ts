import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ALEXNET_PAPER_EXCHANGES, alexnetColumnOf, countMacs, countParams, createModel, describeModel, listModels } from '..';

before(async () => {
  await tf.setBackend('cpu');
});

// Walks the registry as timm's and torchvision's tests do: every model builds, runs forward on
// the cpu backend and agrees with the weight-free description of it. Above 40 M parameters the
// random initialisation alone takes seconds, so those are built with zero weights: their code
// paths run with random weights in the smaller models of the same family.
const BIG = 40e6;
for (const info of listModels()) {
  const random = info.params < BIG;
  test(`${info.name}: forward shape, finite logits, params and MACs equal the analytic counts${random ? '' : ' (zero weights)'}`, () => {
    const inputSize = Math.max(32, info.minInputSize);
    const numClasses = 7;
    const model = createModel(info.name, { inputSize, numClasses, seed: 1, initWeights: random });
    try {
      const y = tf.tidy(() => model.predict(tf.randomUniform([1, inputSize, inputSize, 3], -1, 1, 'float32', 2)) as tf.Tensor);
      assert.deepEqual(y.shape, [1, numClasses]);
      const logits = Array.from(y.dataSync());
      assert.ok(logits.every(Number.isFinite), 'finite logits');
      if (random) assert.ok(new Set(logits).size > 1, 'logits depend on the weights');
      y.dispose();
      const d = describeModel(info.name, { inputSize, numClasses });
      assert.equal(countParams(model), d.params);
      assert.equal(countMacs(model, inputSize), d.macs);
      const names = model.layers.map((l) => l.name);
      assert.equal(new Set(names).size, names.length, 'unique layer names');
      if (info.name === 'alexnet_paper') {
        for (const c of [0, 1]) for (const n of [1, 2, 3, 4, 5]) assert.ok(names.includes(`col${c}_conv${n}`), `col${c}_conv${n}`);
        // conv2/4/5 see their own column only: 48, 192, 192 input channels; conv3 sees both: 256.
        const cin = (n: string) => model.getLayer(n).getWeights()[0].shape[2];
        assert.deepEqual(['col1_conv2', 'col1_conv3', 'col1_conv4', 'col1_conv5'].map(cin), [48, 256, 192, 192]);
        // A column's layers read only their own column or an exchange; exchanges join both columns.
        for (const layer of model.layers) {
          const inbound = layer.inboundNodes.flatMap((n) => n.inboundLayers.map((l) => l.name));
          const col = alexnetColumnOf(layer.name);
          if (col !== 'shared') {
            assert.ok(inbound.every((n) => alexnetColumnOf(n) === col || (ALEXNET_PAPER_EXCHANGES as readonly string[]).includes(n) || n === 'input'), `${layer.name} reads ${inbound}`);
          } else if ((ALEXNET_PAPER_EXCHANGES as readonly string[]).includes(layer.name)) {
            assert.deepEqual(inbound.map(alexnetColumnOf), [0, 1], layer.name);
          }
        }
        assert.deepEqual(model.layers.filter((l) => alexnetColumnOf(l.name) === 'shared').map((l) => l.name).sort(), ['fc8', 'input', ...ALEXNET_PAPER_EXCHANGES].sort());
      }
    } finally {
      model.dispose();
    }
  });
}
