import { h, section, table } from '../dom';
import { ago, fixed, percent } from '../format';
import type { JobView, WorkerView } from '../api/client';
import { jobLink, pausingNote, progressBar, ranksWanted, stateCell } from './job-cells';

/** The cluster page: workers, the queue, and every job. */
export function renderCluster(root: HTMLElement, workers: WorkerView[], jobs: JobView[], now = Date.now()): void {
  root.replaceChildren(
    section('Workers', workersTable(workers, now), { class: 'wide', id: 'workers' }),
    section('Queue', queueTable(jobs, now), { class: 'wide', id: 'queue' }),
    section('Jobs', jobsTable(jobs), { class: 'wide', id: 'jobs' }),
  );
}

function workersTable(workers: WorkerView[], now: number): HTMLTableElement {
  const rows = [...workers].sort((a, b) => a.id.localeCompare(b.id)).map((w) => h('tr', { 'data-worker': w.id },
    h('td', {}, w.id, h('div', { class: 'sub' }, `${w.host} pid ${w.pid}`)),
    h('td', {}, w.backend),
    h('td', {}, w.device),
    w.alive ? stateCell(w.state) : stateCell('lost', '(no heartbeat)'),
    h('td', {}, w.jobId ? jobLink(w.jobId) : ''),
    h('td', { class: 'num' }, w.rank ?? ''),
    h('td', { class: 'muted' }, ago(w.lastSeen, now))));
  return table(['Worker', 'Backend', 'Device', 'State', 'Job', 'Rank', 'Seen'], rows, 'no workers registered: start some with `fleet worker`');
}

function queueTable(jobs: JobView[], now: number): HTMLTableElement {
  const waiting = jobs.filter((j) => j.state === 'queued' || j.state === 'scheduled').sort((a, b) => a.createdAt - b.createdAt);
  const rows = waiting.map((j, i) => h('tr', { 'data-job': j.id },
    h('td', { class: 'num' }, i + 1),
    h('td', {}, jobLink(j.id, j.name ?? j.id), j.name ? h('div', { class: 'sub' }, j.id) : null),
    h('td', {}, j.spec.model.name),
    stateCell(j.state),
    h('td', { class: 'num' }, ranksWanted(j)),
    h('td', { class: 'num' }, j.spec.priority ?? ''),
    h('td', { class: 'muted' }, ago(j.createdAt, now))));
  return table(['#', 'Job', 'Model', 'State', 'Ranks', 'Priority', 'Waiting'], rows, 'nothing waiting');
}

function jobsTable(jobs: JobView[]): HTMLTableElement {
  const rows = [...jobs].sort((a, b) => b.createdAt - a.createdAt).map((j) => h('tr', { 'data-job': j.id },
    h('td', {}, jobLink(j.id, j.name ?? j.id), j.name ? h('div', { class: 'sub' }, j.id) : null),
    h('td', {}, j.spec.model.name),
    stateCell(j.state, pausingNote(j)),
    h('td', {}, progressBar(j)),
    h('td', { class: 'num' }, j.epoch ?? ''),
    h('td', { class: 'num' }, fixed(j.loss, 4)),
    h('td', { class: 'num' }, percent(j.accuracy)),
    h('td', { class: 'num' }, fixed(j.imagesPerSec, 1)),
    h('td', { class: 'num' }, j.members?.length ?? ranksWanted(j)),
    h('td', { class: 'num' }, j.restarts?.length ?? 0)));
  return table(['Job', 'Model', 'State', 'Progress', 'Epoch', 'Loss', 'Acc', 'Img/s', 'Ranks', 'Restarts'], rows,
    'no jobs yet: POST /jobs or `fleet submit job.yaml`');
}
