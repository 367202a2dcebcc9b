import { tf } from './tf';

/**
 * A forward pass whose backward pass runs later, from a gradient that arrives later: what a
 * pipeline stage needs (GPipe, 1F1B), where tf.grads would run the backward at once. It records
 * the engine's tape as tf.grads does and keeps it, with the tensors the gradients need, until
 * `backward()` or `release()`; several forwards may be pending at once (1F1B keeps one per
 * micro-batch in flight). The walk mirrors tfjs-core's own (tape.ts: the nodes that lead from
 * the sources to the output, backwards, summing the gradients of tensors used twice).
 */
interface TapeNode {
  id: number;
  kernelName: string;
  outputs: tf.Tensor[];
  inputs: Record<string, tf.Tensor>;
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

/** The engine members tfjs does not type publicly (tfjs-core 4.x engine.ts). */
interface EngineInternals {
  startTape(): void;
  endTape(): void;
  tidy<T extends tf.TensorContainer>(nameOrFn: string | (() => T), fn?: () => T): T;
  startScope(name?: string): void;
  endScope(result?: tf.TensorContainer): void;
  state: { activeTape: TapeNode[] | null; gradientDepth: number; activeScope?: { track: tf.Tensor[] } };
}

export class RecordedForward {
  private released = false;

  constructor(
    /** What `f` returned; kept until release(). */
    readonly outputs: tf.Tensor[],
    private readonly tape: TapeNode[],
  ) {}

  /**
   * Gradients of Σ⟨outputs[i], dys[i]⟩ with respect to `sources` (variables, or tensors that
   * went into the forward pass): one per source, null where a source does not reach any output.
   * A null dy counts as zeros. The result is the caller's to dispose; the recording is released.
   */
  backward(dys: (tf.Tensor | null)[], sources: tf.Tensor[]): (tf.Tensor | null)[] {
    this.check(dys);
    const engine = tf.engine() as unknown as EngineInternals;
    try {
      return engine.tidy(() => {
        const walk = new GradientWalk(dys, this.outputs);
        walk.run(reachingNodes(this.tape, sources, this.outputs), () => false);
        return walk.of(sources) as tf.Tensor[];
      });
    } finally {
      this.release();
    }
  }

  /**
   * The backward pass in two halves, so that a pipeline stage can send the gradient of its
   * input upstream before it computes its weights' gradients (the upstream stage's wait is
   * then the input half only): `inputs()` walks the tape computing every gradient but those
   * of `weights`, whose gradient functions (tfjs evaluates them lazily) wait for `weights()`.
   * Each result is the same tensor `backward()` would give. Between the halves the tensors the
   * deferred functions need stay alive in an engine scope: run no other tfjs work there that
   * must outlive it, and call `weights()` or `release()` to end it.
   */
  backwardSplit(dys: (tf.Tensor | null)[], inputs: tf.Tensor[], weights: tf.Tensor[]): SplitBackward {
    this.check(dys);
    const engine = tf.engine() as unknown as EngineInternals;
    const weightIds = new Set(weights.map((w) => w.id));
    const walk = new GradientWalk(dys, this.outputs);
    // The first half runs in a scope of its own, synchronously; the tensors it made (the
    // gradients so far and whatever the deferred functions captured) are kept past its end
    // and freed by hand after the second half. No engine scope stays open across the caller's
    // awaits, so several stages may interleave in one process.
    let held: tf.Tensor[] = [];
    engine.startScope('backward-split');
    let ok = false;
    try {
      walk.run(reachingNodes(this.tape, [...inputs, ...weights], this.outputs), (x) => weightIds.has(x.id));
      held = [...(engine.state.activeScope?.track ?? [])];
      for (const t of held) tf.keep(t);
      ok = true;
    } finally {
      engine.endScope();
      if (!ok) this.release();
    }
    const inputGrads = walk.of(inputs);
    let open = true;
    const end = (spare: Set<tf.Tensor>) => {
      open = false;
      for (const t of held) if (!spare.has(t) && !t.isDisposed) t.dispose();
      held = [];
      this.release();
    };
    return {
      inputs: inputGrads,
      weights: () => {
        if (!open) throw new Error('this split backward pass has ended');
        let weightGrads: (tf.Tensor | null)[] = [];
        try {
          weightGrads = engine.tidy(() => {
            walk.runDeferred();
            return walk.of(weights) as tf.Tensor[];
          });
          return weightGrads;
        } finally {
          // (a gradient function may hand back a tensor the first half already made)
          end(new Set([...inputGrads, ...weightGrads].filter((g): g is tf.Tensor => g !== null)));
        }
      },
      release: () => {
        if (open) end(new Set());
      },
    };
  }

  private check(dys: (tf.Tensor | null)[]): void {
    if (this.released) throw new Error('this forward pass was already backpropagated or released');
    if (dys.length !== this.outputs.length) throw new Error(`backward needs one gradient per output (${this.outputs.length}), got ${dys.length}`);
  }

  /** Frees the recording and the outputs without a backward pass (a failed step). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const node of this.tape) for (const t of node.saved ?? []) t.dispose();
    tf.dispose(this.outputs);
  }
}

/** The two halves of RecordedForward.backwardSplit. */
export interface SplitBackward {
  /** Gradients of the `inputs`, ready now (null where an input does not reach an output). */
  inputs: (tf.Tensor | null)[];
  /** Computes the gradients of the `weights` and ends the pass; inputs' and weights' gradients are the caller's to dispose. */
  weights(): (tf.Tensor | null)[];
  /** Ends the pass without the weights' gradients (a failed step); frees the inputs' gradients too. */
  release(): void;
}

/**
 * Gradients by tensor id, walked backwards over tape nodes as tfjs-core's tape does: each
 * node's gradient functions give its inputs' gradients, summed where a tensor is used twice.
 * Functions for the inputs `defer` selects are kept to run later (runDeferred).
 */
class GradientWalk {
  private readonly grads = new Map<number, tf.Tensor>();
  private readonly given: Set<tf.Tensor>;
  private readonly deferred: { x: tf.Tensor; fn: () => tf.Tensor }[] = [];

  constructor(dys: (tf.Tensor | null)[], outputs: tf.Tensor[]) {
    this.given = new Set(dys.filter((d): d is tf.Tensor => d !== null));
    outputs.forEach((y, i) => {
      const dy = dys[i];
      if (!dy) return;
      if (dy.shape.join() !== y.shape.join()) throw new Error(`gradient ${i} has shape [${dy.shape}], output [${y.shape}]`);
      this.grads.set(y.id, dy);
    });
  }

  run(nodes: TapeNode[], defer: (x: tf.Tensor) => boolean): void {
    const engine = tf.engine() as unknown as EngineInternals;
    for (const node of nodes) {
      const dys = node.outputs.map((o) => this.grads.get(o.id) ?? null);
      // Nothing flows back through a node none of whose outputs has a gradient.
      if (dys.every((d) => d === null)) continue;
      if (!node.gradient) throw new Error(`no gradient is registered for ${node.kernelName}`);
      const inputGrads = node.gradient(dys);
      for (const [name, x] of Object.entries(node.inputs)) {
        const fn = inputGrads[name];
        if (!fn) throw new Error(`${node.kernelName} gives no gradient for its input ${name}`);
        if (defer(x)) this.deferred.push({ x, fn });
        else this.add(x, engine.tidy(fn));
      }
    }
  }

  runDeferred(): void {
    const engine = tf.engine() as unknown as EngineInternals;
    for (const { x, fn } of this.deferred.splice(0)) this.add(x, engine.tidy(fn));
  }

  of(sources: tf.Tensor[]): (tf.Tensor | null)[] {
    return sources.map((s) => this.grads.get(s.id) ?? null);
  }

  private add(x: tf.Tensor, dx: tf.Tensor): void {
    const prev = this.grads.get(x.id);
    this.grads.set(x.id, prev ? tf.add(prev, dx) : dx);
    if (prev) {
      dx.dispose();
      if (!this.given.has(prev)) prev.dispose();
    }
  }
}

/**
 * Runs `f` (which reads `sources`: its inputs and the variables to differentiate) with the
 * engine's tape on, and keeps the tape for a later `backward()`.
 */
export function recordForward(f: () => tf.Tensor | tf.Tensor[]): RecordedForward {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.state.gradientDepth !== 0) throw new Error('recordForward cannot run inside tf.grads / another recording');
  engine.startTape();
  let out: tf.Tensor | tf.Tensor[];
  try {
    out = engine.tidy('forward', f);
  } finally {
    engine.endTape();
  }
  const tape = engine.state.activeTape ?? [];
  // The next recording (or tf.grads) starts a tape of its own.
  engine.state.activeTape = null;
  return new RecordedForward(Array.isArray(out) ? out : [out], tape);
}

/**
 * The tape nodes on a path from a source to an output, in tape order, with their inputs cut to
 * those that come from a source (as tfjs-core's getFilteredNodesXToY).
 */
function reachingNodes(tape: TapeNode[], sources: tf.Tensor[], outputs: tf.Tensor[]): TapeNode[] {
  const fromSource = new Set(sources.map((s) => s.id));
  const forward = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((x) => fromSource.has(x.id))) {
      forward.add(node.id);
      for (const o of node.outputs) fromSource.add(o.id);
    }
  }
  const toOutput = new Set(outputs.map((y) => y.id));
  const backward = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toOutput.has(o.id))) {
      backward.add(node.id);
      for (const x of Object.values(node.inputs)) toOutput.add(x.id);
    }
  }
  const nodes: TapeNode[] = [];
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (!forward.has(node.id) || !backward.has(node.id)) continue;
    const inputs = Object.fromEntries(Object.entries(node.inputs).filter(([, x]) => fromSource.has(x.id)));
    nodes.push({ ...node, inputs });
  }
  return nodes;
}
