import type { RankLayout } from '@tensorfleet/control';
import { alexnetColumnOf, describeModel, modelSections, type CreateModelOptions, type ModelSection } from '@tensorfleet/models';
import { TrainingError } from '../errors';
import type { ParallelPlan, StageBalance } from './plan';

/**
 * Where stages start: contiguous runs of sections with the largest run's cost as small as it
 * can be (the linear partition problem, by dynamic programming over the n sections). Returns
 * the index of each stage's first section (0 for stage 0).
 */
export function balanceStages(costs: number[], stages: number): number[] {
  const n = costs.length;
  if (stages > n) throw new TrainingError('INVALID_OPTIONS', `${stages} stages need at least ${stages} sections; the model has ${n}`);
  const prefix = [0];
  for (const c of costs) prefix.push(prefix[prefix.length - 1] + c);
  const span = (a: number, b: number) => prefix[b] - prefix[a];
  // best[k][i]: the least worst-stage cost of the first i sections cut into k stages
  const best = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(Infinity));
  const from = Array.from({ length: stages + 1 }, () => new Array<number>(n + 1).fill(0));
  best[0][0] = 0;
  for (let k = 1; k <= stages; k++) {
    for (let i = k; i <= n - (stages - k); i++) {
      for (let j = k - 1; j < i; j++) {
        const cost = Math.max(best[k - 1][j], span(j, i));
        // ties go to the later cut: earlier stages a little lighter (they also hold more activations)
        if (cost <= best[k][i]) {
          best[k][i] = cost;
          from[k][i] = j;
        }
      }
    }
  }
  const starts: number[] = [];
  for (let k = stages, i = n; k > 0; k--) {
    i = from[k][i];
    starts.unshift(i);
  }
  return starts;
}

/** Stage starts from explicit cuts: the names of the sections where stages 1.. begin. */
export function stagesFromCuts(sections: string[], cuts: string[], stages: number): number[] {
  if (cuts.length !== stages - 1) {
    throw new TrainingError('INVALID_OPTIONS', `parallelism.modelParallel.cuts: ${stages} stages need ${stages - 1} cut points, got ${cuts.length}`);
  }
  const starts = [0];
  for (const c of cuts) {
    const at = sections.indexOf(c);
    if (at < 1) {
      throw new TrainingError('INVALID_OPTIONS', `parallelism.modelParallel.cuts: "${c}" is not a section a stage can start at; sections: ${sections.slice(1).join(', ')}`);
    }
    if (at <= starts[starts.length - 1]) throw new TrainingError('INVALID_OPTIONS', `parallelism.modelParallel.cuts must name sections in model order; "${c}" comes before or at the previous cut`);
    starts.push(at);
  }
  return starts;
}

/** Sections per stage, from stage starts. */
export function sectionsOfStages(sections: string[], starts: number[]): string[][] {
  return starts.map((a, k) => sections.slice(a, k + 1 < starts.length ? starts[k + 1] : sections.length));
}

/**
 * A pipeline's stages: the spec's cuts if it gives them, else balanced by the sections'
 * multiply-adds (`costs` overrides them: measured times for `balance: 'time'`).
 */
export function pipelineStages(sections: ModelSection[], plan: Pick<ParallelPlan, 'stages' | 'cuts'>, costs?: number[]): string[][] {
  const names = sections.map((s) => s.name);
  const starts = plan.cuts ? stagesFromCuts(names, plan.cuts, plan.stages) : balanceStages(costs ?? sections.map((s) => s.macs), plan.stages);
  return sectionsOfStages(names, starts);
}

/**
 * Every rank's part of the model, from the layer configs (no weights built): the layout the
 * job record and the dashboard show. `stageSections` (pipelines) are the stages' sections.
 */
export function planLayout(model: string, opts: CreateModelOptions, plan: ParallelPlan, momentum: number, stageSections?: string[][]): RankLayout[] {
  const sections = modelSections(model, opts);
  const layers = describeModel(model, opts).layers;
  const parts: { params: number; state: number; macs: number; sections: [string, string] }[] = [];
  if (plan.kind === 'pipeline') {
    const stages = stageSections ?? pipelineStages(sections, plan);
    for (const names of stages) {
      const own = sections.filter((s) => names.includes(s.name));
      parts.push({
        params: own.reduce((a, s) => a + s.params, 0), state: own.reduce((a, s) => a + s.state, 0), macs: own.reduce((a, s) => a + s.macs, 0),
        sections: [names[0], names[names.length - 1]],
      });
    }
  } else if (plan.kind === 'columns') {
    for (const c of [0, 1]) {
      const own = layers.filter((l) => alexnetColumnOf(l.name) !== 1 - c);
      parts.push({
        params: own.reduce((a, l) => a + l.params, 0), state: own.reduce((a, l) => a + l.state, 0), macs: own.reduce((a, l) => a + l.macs, 0),
        sections: [sections[0].name, sections[sections.length - 1].name],
      });
    }
  } else {
    parts.push({
      params: layers.reduce((a, l) => a + l.params, 0), state: layers.reduce((a, l) => a + l.state, 0), macs: layers.reduce((a, l) => a + l.macs, 0),
      sections: [sections[0].name, sections[sections.length - 1].name],
    });
  }
  const role = plan.kind === 'pipeline' ? 'stage' : plan.kind === 'columns' ? 'column' : 'replica';
  return Array.from({ length: plan.worldSize }, (_, rank) => {
    const { replica, stage } = plan.place(rank);
    const p = parts[stage];
    return {
      rank, replica, stage, role, sections: p.sections, params: p.params, macs: p.macs,
      weightBytes: 4 * (p.params + p.state), optimizerBytes: momentum > 0 ? 4 * p.params : 0,
    };
  });
}

export type { RankLayout, StageBalance };
