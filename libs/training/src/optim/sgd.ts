import { nativeSgdStep, soleHeapView, tf } from '@tensorfleet/models';
import { TrainingError } from '../errors';

/** SGD with momentum, PyTorch `torch.optim.SGD` semantics (dampening 0). */
export interface SgdOptions {
  /** Momentum μ; 0 turns the velocity buffers off. Default 0 (as PyTorch). */
  momentum?: number;
  /** L2 weight decay added to the gradient (g += wd·w). Default 0. */
  weightDecay?: number;
  /** Nesterov momentum (g + μ·v instead of v). Needs momentum > 0. Default false. */
  nesterov?: boolean;
  /**
   * Decay every trainable variable. Default false: 1-D variables (biases, BN γ/β) are not
   * decayed, as in Goyal et al. 2017 and timm; their decay only hurts accuracy.
   */
  decayAll?: boolean;
}

export const SGD_DEFAULTS: Required<SgdOptions> = { momentum: 0, weightDecay: 0, nesterov: false, decayAll: false };

export function resolveSgdOptions(opts: SgdOptions = {}): Required<SgdOptions> {
  const o = { ...SGD_DEFAULTS, ...opts };
  if (!(o.momentum >= 0 && o.momentum < 1)) {
    throw new TrainingError('INVALID_OPTIONS', `optimizer.momentum must be in [0, 1), got ${o.momentum}`);
  }
  if (!(o.weightDecay >= 0)) {
    throw new TrainingError('INVALID_OPTIONS', `optimizer.weightDecay must be >= 0, got ${o.weightDecay}`);
  }
  if (o.nesterov && o.momentum === 0) {
    throw new TrainingError('INVALID_OPTIONS', 'optimizer.nesterov needs momentum > 0: set a momentum or drop nesterov');
  }
  return o;
}

/**
 * Applies SGD updates to a fixed list of tf variables, with one velocity buffer per
 * variable. Every op is elementwise float32 in a fixed order, so identical inputs give
 * bitwise identical weights on every rank.
 */
export class Sgd {
  readonly options: Required<SgdOptions>;
  /** Velocity buffers, in the order of `vars`; empty when momentum is 0. */
  readonly slots: tf.Variable[];
  private readonly decay: boolean[];

  constructor(
    private readonly vars: tf.Variable[],
    opts: SgdOptions = {},
  ) {
    this.options = resolveSgdOptions(opts);
    this.decay = vars.map((v) => this.options.weightDecay > 0 && (this.options.decayAll || v.rank > 1));
    // Not trainable, so tf.variableGrads never differentiates through them.
    this.slots = this.options.momentum > 0 ? vars.map((v) => zeroVariable(v)) : [];
  }

  /**
   * w ← w − lr·update(g), for every variable (or only those at `only`); `grads[i]` pairs with
   * `vars[i]`. Each variable's update reads only its own weight, velocity and gradient, so a
   * subset now and the rest later gives the same bits as all at once.
   */
  apply(grads: (tf.Tensor | null)[], lr: number, only?: readonly number[]): void {
    const { momentum, weightDecay, nesterov } = this.options;
    tf.tidy(() => {
      const lrT = tf.scalar(lr);
      const muT = tf.scalar(momentum);
      const wdT = tf.scalar(weightDecay);
      for (const i of only ?? this.vars.keys()) {
        const w = this.vars[i];
        let g = grads[i]!;
        if (this.decay[i]) g = tf.add(g, tf.mul(w, wdT));
        if (momentum > 0) {
          const v = tf.add(tf.mul(this.slots[i], muT), g);
          this.slots[i].assign(v);
          g = nesterov ? tf.add(g, tf.mul(v, muT)) : v;
        }
        w.assign(tf.sub(w, tf.mul(g, lrT)));
      }
    });
  }

  /**
   * apply() with the gradients as host arrays. On the `onednn` backend the update is the addon's
   * sgdStep: one pass over each weight, its velocity and its gradient, in place on the wasm heap,
   * with the same fp32 operations in the same order as apply()'s tfjs ops (the same bits), instead
   * of five to seven kernels each writing its own output, and without copying each gradient onto
   * the heap. Elsewhere, or when a weight's buffer is shared (soleHeapView), apply(). (The same
   * loop in JavaScript, Math.fround per operation, was measured at 3.9 ns per parameter against
   * the tfjs ops' 1.8: V8 does not vectorise it.)
   */
  applyArrays(grads: Float32Array[], lr: number, only?: readonly number[]): void {
    const { momentum, weightDecay, nesterov } = this.options;
    const which = only ?? [...this.vars.keys()];
    const step = nativeSgdStep();
    // Every weight's (and velocity's) view, or none: nothing between here and the last step()
    // allocates on the heap, so the views stay valid.
    const views = step ? which.map((i) => [soleHeapView(this.vars[i]), momentum > 0 ? soleHeapView(this.slots[i]) : null] as const) : [];
    const inPlace = step && views.every(([W, V], j) => W && W.length === grads[which[j]].length && (momentum === 0 || V));
    if (!inPlace) {
      tf.tidy(() => {
        const tensors = new Array<tf.Tensor | null>(this.vars.length).fill(null);
        for (const i of which) tensors[i] = tf.tensor(grads[i], this.vars[i].shape, 'float32');
        this.apply(tensors, lr, which);
      });
      return;
    }
    views.forEach(([W, V], j) => step(W!, V, grads[which[j]], lr, momentum, this.decay[which[j]] ? weightDecay : NaN, nesterov));
  }

  /** Which variables get weight decay (same order as the variables). */
  decayMask(): boolean[] {
    return [...this.decay];
  }

  dispose(): void {
    for (const s of this.slots) s.dispose();
  }
}

function zeroVariable(like: tf.Tensor): tf.Variable {
  const zeros = tf.zerosLike(like);
  const v = tf.variable(zeros, false);
  zeros.dispose();
  return v;
}
