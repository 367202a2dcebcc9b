import { h } from '../dom';
import type { JobView } from '../api/client';

/** Link to a job's page. */
export function jobLink(id: string, label = id): HTMLAnchorElement {
  return h('a', { href: `#/jobs/${encodeURIComponent(id)}`, 'data-job': id }, label);
}

export function stateCell(state: string, extra?: string): HTMLTableCellElement {
  return h('td', { class: `state s-${state}` }, state, extra ? h('span', { class: 'sub' }, ` ${extra}`) : null);
}

/** What a job's state cell adds while a pause is pending: now, or after a given step (POST /jobs/:id/pause atStep). */
export function pausingNote(job: Pick<JobView, 'pauseRequested' | 'pauseAtStep'>): string | undefined {
  if (job.pauseRequested) return '(pausing)';
  return job.pauseAtStep ? `(pausing after step ${job.pauseAtStep})` : undefined;
}

export function progressBar(job: Pick<JobView, 'progress' | 'state' | 'step' | 'totalSteps'>): HTMLElement {
  const p = typeof job.progress === 'number' ? job.progress : job.state === 'completed' ? 1 : 0;
  return h('span', {},
    h('span', { class: 'bar' }, h('i', { style: `width:${(p * 100).toFixed(1)}%` })),
    h('span', { class: 'sub' }, ` ${job.step ?? 0}/${job.totalSteps ?? '?'}`));
}

/** Ranks the job asks for: data-parallel replicas × model-parallel parts. */
export function ranksWanted(job: JobView): number {
  const p = job.spec.parallelism;
  return p.dataParallel * (p.modelParallel?.stages ?? 1);
}
