import { ModelError } from './errors';
import { Graph, Init, torchDefault } from './graph';
import { CommonOptions, assertOneOf } from './options';
import type { PartOwner } from './partition';

/** AlexNet (Krizhevsky, Sutskever & Hinton 2012). */
export interface AlexNetOptions extends CommonOptions {
  /**
   * 'torchvision': the single-column form torchvision ships (64, 192, 384, 256, 256 filters, no LRN).
   * 'paper': the two-column form of the paper, layers `col0_*` / `col1_*`, conv2/4/5 within a column.
   * Default 'torchvision'.
   */
  form: 'torchvision' | 'paper';
  /** Dropout in the first two dense layers. Default 0.5. */
  dropout: number;
  /**
   * The paper form's initialisation: 'paper' (§5: N(0, 0.01) weights, biases 1 in conv2, conv4,
   * conv5 and the hidden dense layers), or 'kaiming' (He et al. 2015: N(0, 2/fan_in), biases 0),
   * which keeps the activations' scale through the ReLUs and trains from scratch in tens of
   * steps where the paper's takes epochs. Default 'paper'. The torchvision form uses PyTorch's.
   */
  init: 'paper' | 'kaiming';
}

export const alexnetDefaults: AlexNetOptions = { numClasses: 1000, inputSize: 224, seed: undefined, form: 'torchvision', dropout: 0.5, init: 'paper' };

export function validateAlexNet(o: AlexNetOptions): void {
  assertOneOf('form', o.form, ['torchvision', 'paper'] as const);
  assertOneOf('init', o.init, ['paper', 'kaiming'] as const);
  if (!(o.dropout >= 0 && o.dropout < 1)) throw new ModelError('INVALID_OPTION', `option dropout must be in [0, 1), got ${o.dropout}`);
}

export function alexnet<T>(g: Graph<T>, o: AlexNetOptions): T {
  return o.form === 'paper' ? alexnetPaper(g, o) : alexnetTorchvision(g, o);
}

function alexnetTorchvision<T>(g: Graph<T>, o: AlexNetOptions): T {
  const conv = (x: T, n: number, filters: number, kernel: number, stride: number, padding: number) => {
    const fanIn = kernel * kernel * g.channels(x);
    const y = g.conv(x, { name: `conv${n}`, filters, kernel, stride, padding, bias: true, init: torchDefault(fanIn), biasInit: torchDefault(fanIn) });
    return g.relu(y, `relu${n}`);
  };
  let x = g.input(o.inputSize, 3);
  x = g.maxPool(conv(x, 1, 64, 11, 4, 2), { name: 'pool1', size: 3, stride: 2 });
  x = g.maxPool(conv(x, 2, 192, 5, 1, 2), { name: 'pool2', size: 3, stride: 2 });
  x = conv(conv(conv(x, 3, 384, 3, 1, 1), 4, 256, 3, 1, 1), 5, 256, 3, 1, 1);
  x = g.maxPool(x, { name: 'pool5', size: 3, stride: 2 });
  x = g.flatten(g.adaptiveAvgPool(x, { name: 'avgpool', size: 6 }), 'flatten');
  x = g.relu(g.dense(g.dropout(x, { name: 'drop6', rate: o.dropout }), { name: 'fc6', units: 4096 }), 'relu6');
  x = g.relu(g.dense(g.dropout(x, { name: 'drop7', rate: o.dropout }), { name: 'fc7', units: 4096 }), 'relu7');
  return g.dense(x, { name: 'fc8', units: o.numClasses });
}

/** Paper init (§5): weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the hidden dense layers, else 0. */
const paperWeights: Init = { dist: 'normal', std: 0.01 };
const bias = (one: boolean): Init => ({ dist: 'constant', value: one ? 1 : 0 });
const COLUMNS = [0, 1];
const kaimingInit = (fanIn: number): { init: Init; biasInit: Init } => ({ init: { dist: 'normal', std: Math.sqrt(2 / fanIn) }, biasInit: { dist: 'constant', value: 0 } });

/**
 * The two-GPU form: each column is its own chain of layers named col{c}_*, so that a later
 * stage can place the columns on two workers. conv1 and conv3 (and the dense layers) read
 * both columns; conv2, conv4 and conv5 only their own. 60,965,224 parameters at 1000 classes.
 * Input 227, not the paper's stated 224: 11×11/4 without padding needs 227 to give 55×55.
 */
function alexnetPaper<T>(g: Graph<T>, o: AlexNetOptions): T {
  const paper = o.init === 'paper';
  const conv = (x: T, c: number, n: number, filters: number, kernel: number, padding: number, stride = 1) => {
    const y = g.conv(x, { name: `col${c}_conv${n}`, filters, kernel, stride, padding, bias: true, ...(paper ? { init: paperWeights, biasInit: bias(n !== 1 && n !== 3) } : kaimingInit(kernel * kernel * g.channels(x))) });
    return g.relu(y, `col${c}_relu${n}`);
  };
  const denseInit = (x: T) => (paper ? null : kaimingInit(g.channels(x)));
  const lrn = (x: T, c: number, n: number) => g.lrn(x, { name: `col${c}_lrn${n}`, size: 5, alpha: 1e-4, beta: 0.75, k: 2 });
  const pool = (x: T, c: number, n: number) => g.maxPool(x, { name: `col${c}_pool${n}`, size: 3, stride: 2 });

  // Sections end where the columns exchange activations (ALEXNET_PAPER_EXCHANGES): each starts
  // with the concatenation of both columns' outputs of the one before.
  g.section('conv1_2');
  const input = g.input(o.inputSize, 3);
  const pooled2 = COLUMNS.map((c) => {
    const x = pool(lrn(conv(input, c, 1, 48, 11, 0, 4), c, 1), c, 1);
    return pool(lrn(conv(x, c, 2, 128, 5, 2), c, 2), c, 2);
  });
  g.section('conv3_5');
  const both2 = g.concat(pooled2, 'conv3_input');
  const flat = COLUMNS.map((c) => {
    let x = conv(both2, c, 3, 192, 3, 1);
    x = conv(conv(x, c, 4, 192, 3, 1), c, 5, 128, 3, 1);
    x = g.adaptiveAvgPool(pool(x, c, 5), { name: `col${c}_avgpool`, size: 6 });
    return g.flatten(x, `col${c}_flatten`);
  });
  g.section('fc6');
  let x = g.concat(flat, 'fc6_input');
  for (const n of [6, 7]) {
    const cols = COLUMNS.map((c) => {
      const y = g.relu(g.dense(x, { name: `col${c}_fc${n}`, units: 2048, ...(denseInit(x) ?? { init: paperWeights, biasInit: bias(true) }) }), `col${c}_relu${n}`);
      return g.dropout(y, { name: `col${c}_drop${n}`, rate: o.dropout });
    });
    g.section(`fc${n + 1}`);
    x = g.concat(cols, `fc${n + 1}_input`);
  }
  return g.dense(x, { name: 'fc8', units: o.numClasses, ...(denseInit(x) ?? { init: paperWeights, biasInit: bias(false) }) });
}

/** alexnet_paper layers that join the two columns: where column workers exchange activations. */
export const ALEXNET_PAPER_EXCHANGES = ['conv3_input', 'fc6_input', 'fc7_input', 'fc8_input'] as const;

/** The column (0 or 1) a layer of alexnet_paper belongs to; 'shared' for the input, the exchanges and fc8. */
export function alexnetColumnOf(layerName: string): 0 | 1 | 'shared' {
  const m = /^col([01])_/.exec(layerName);
  return m ? (Number(m[1]) as 0 | 1) : 'shared';
}

/**
 * The layers one column worker of alexnet_paper builds: its own column's and the shared ones
 * (the input, the exchanges' concatenations, and fc8, which every column holds whole: see
 * docs/model-parallel.md). With `section`, only that section's (one span between exchanges).
 */
export function alexnetColumnOwner(column: 0 | 1, section?: string): PartOwner {
  return {
    owns: (layer, s) => (section === undefined || s === section) && alexnetColumnOf(layer) !== 1 - column,
    replicated: (layer) => alexnetColumnOf(layer) === 'shared',
  };
}

/** alexnet_paper's sections in order: each after the first starts with one of ALEXNET_PAPER_EXCHANGES. */
export const ALEXNET_PAPER_SECTIONS = ['conv1_2', 'conv3_5', 'fc6', 'fc7', 'fc8'] as const;
