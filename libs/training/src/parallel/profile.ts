import { createModelPart, recordForward, sectionsOwner, tf, type CreateModelOptions } from '@tensorfleet/models';

/**
 * Forward + backward time of each of `sections` on this process's backend, at `batch`
 * samples: each section is built alone (only its weights), run once to warm up and then
 * `repeats` times, and disposed before the next, so profiling a large model never holds more
 * than one section. The fastest of the repeats, in ms: on a shared machine a repeat is only
 * ever slowed down by others, never sped up.
 */
export function profileSections(model: string, opts: CreateModelOptions, sections: string[], batch: number, repeats = 5): number[] {
  return sections.map((name) => {
    const part = createModelPart(model, { ...opts, initWeights: true }, sectionsOwner([name]), `profile_${name}`);
    try {
      const inputs = part.inputs.map((p) => tf.randomNormal([batch, ...p.shape], 0, 1, 'float32', 1));
      const vars = part.model.trainableWeights.map((w) => w.read());
      const once = () => {
        const t0 = performance.now();
        const rec = recordForward(() => part.model.apply(inputs.length === 1 ? inputs[0] : inputs, { training: true }) as tf.Tensor);
        const dy = tf.onesLike(rec.outputs[0]);
        const grads = rec.backward([dy], vars);
        // reading one gradient waits for the backend to finish (an asynchronous GPU does not block otherwise)
        for (const g of grads) if (g) g.dataSync();
        tf.dispose([dy, ...grads.filter((g): g is tf.Tensor => g !== null)]);
        return performance.now() - t0;
      };
      once();
      const fastest = Math.min(...Array.from({ length: repeats }, once));
      tf.dispose(inputs);
      return fastest;
    } finally {
      part.model.dispose();
    }
  });
}
