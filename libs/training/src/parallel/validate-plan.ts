import type { FieldError, JobSpec } from '@tensorfleet/control';
import { describeModel, modelFamily, modelSections, type CreateModelOptions } from '@tensorfleet/models';
import { TrainingError } from '../errors';
import { stagesFromCuts } from './layout';

/**
 * The model-parallel plan checks that need the model (the coordinator runs them before a job
 * is queued, after control's specErrors): each names the field to change.
 */
export function planErrors(spec: Pick<JobSpec, 'model' | 'parallelism'>, modelOptions: CreateModelOptions): FieldError[] {
  const mp = spec.parallelism.modelParallel;
  if (!mp) return [];
  const name = spec.model.name;
  if (mp.kind === 'alexnet-columns') {
    const layers = describeModel(name, modelOptions).layers.map((l) => l.name);
    if (!layers.some((l) => l.startsWith('col0_')) || !layers.some((l) => l.startsWith('col1_'))) {
      return [{ field: 'parallelism.modelParallel.kind', message: `alexnet-columns splits AlexNet's two columns (Krizhevsky et al. 2012); ${name} has none: use model alexnet_paper, or kind pipeline for a ResNet` }];
    }
    return [];
  }
  if (modelFamily(name) !== 'resnet') {
    return [{ field: 'parallelism.modelParallel.kind', message: `pipeline cuts ResNet-family models at block boundaries; ${name} is ${modelFamily(name)}: use alexnet-columns with alexnet_paper, or data parallelism` }];
  }
  const sections = modelSections(name, modelOptions).map((s) => s.name);
  if (mp.stages > sections.length) {
    return [{ field: 'parallelism.modelParallel.stages', message: `${name} has ${sections.length} sections to cut between (the stem, ${sections.length - 2} blocks, the head): at most ${sections.length} stages, got ${mp.stages}` }];
  }
  if (mp.cuts) {
    try {
      stagesFromCuts(sections, mp.cuts, mp.stages);
    } catch (e) {
      if (!(e instanceof TrainingError)) throw e;
      return [{ field: 'parallelism.modelParallel.cuts', message: e.message.replace(/^parallelism\.modelParallel\.cuts:? ?/, '') }];
    }
  }
  return [];
}
