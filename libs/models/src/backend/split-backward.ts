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
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
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
    if (this.released) throw new Error('this forward pass was already backpropagated or released');
    if (dys.length !== this.outputs.length) throw new Error(`backward needs one gradient per output (${this.outputs.length}), got ${dys.length}`);
    const engine = tf.engine() as unknown as EngineInternals;
    try {
      return engine.tidy(() => {
        const grads = new Map<number, tf.Tensor>();
        const given = new Set(dys.filter((d): d is tf.Tensor => d !== null));
        this.outputs.forEach((y, i) => {
          const dy = dys[i];
          if (!dy) return;
          if (dy.shape.join() !== y.shape.join()) throw new Error(`gradient ${i} has shape [${dy.shape}], output [${y.shape}]`);
          grads.set(y.id, dy);
        });
        for (const node of reachingNodes(this.tape, sources, this.outputs)) {
          const dys = node.outputs.map((o) => grads.get(o.id) ?? null);
          // Nothing flows back through a node none of whose outputs has a gradient.
          if (dys.every((d) => d === null)) continue;
          if (!node.gradient) throw new Error(`no gradient is registered for ${node.kernelName}`);
          const inputGrads = node.gradient(dys);
          for (const [name, x] of Object.entries(node.inputs)) {
            const fn = inputGrads[name];
            if (!fn) throw new Error(`${node.kernelName} gives no gradient for its input ${name}`);
            const dx = engine.tidy(fn);
            const prev = grads.get(x.id);
            grads.set(x.id, prev ? tf.add(prev, dx) : dx);
            if (prev) {
              dx.dispose();
              if (!given.has(prev)) prev.dispose();
            }
          }
        }
        return sources.map((s) => grads.get(s.id) ?? null) as tf.Tensor[];
      });
    } finally {
      this.release();
    }
  }

  /** Frees the recording and the outputs without a backward pass (a failed step). */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const node of this.tape) for (const t of node.saved ?? []) t.dispose();
    tf.dispose(this.outputs);
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
