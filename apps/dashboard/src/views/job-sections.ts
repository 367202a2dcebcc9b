import type { RankLayout } from '@tensorfleet/control';
import { h, table } from '../dom';
import { bytes, clock, count, duration, fixed, percent } from '../format';
import type { CheckpointView, EventView, JobView, LogLine } from '../api/client';

// The parts of a job's page, each a pure function of what the API returned.

export function jobCards(j: JobView, now = Date.now()): HTMLElement[] {
  const card = (label: string, value: string | number, name: string) => h('div', { class: 'card', 'data-card': name }, h('b', {}, value), h('span', {}, label));
  const ran = j.startedAt ? ((j.finishedAt ?? now) - j.startedAt) / 1000 : undefined;
  return [
    card('step', `${j.step ?? 0} / ${j.totalSteps ?? '?'}`, 'step'),
    card('epoch', j.epoch ?? '–', 'epoch'),
    card('training loss', fixed(j.loss, 4), 'loss'),
    card('training accuracy', percent(j.accuracy), 'accuracy'),
    card('held-out loss', fixed(j.evalLoss, 4), 'evalLoss'),
    card('held-out accuracy', percent(j.evalAccuracy), 'evalAccuracy'),
    card('images / s', fixed(j.imagesPerSec, 1), 'imagesPerSec'),
    card('running for', duration(ran), 'duration'),
    card('attempt', j.attempt, 'attempt'),
    card('restarts', j.restarts?.length ?? 0, 'restarts'),
  ];
}

export function layoutTable(j: JobView): HTMLTableElement {
  const head = ['Rank', 'Worker', 'Replica', 'Part', 'Sections', 'Parameters', 'Weights', 'Optimizer', 'GMACs / image'];
  if (!j.layout?.length) {
    // Before the first assignment (or from an older record) there is no layout: show the members.
    const rows = (j.members ?? []).map((m) => h('tr', { 'data-rank': m.rank }, h('td', {}, m.rank), h('td', {}, m.workerId), ...head.slice(2).map(() => h('td', { class: 'muted' }, '–'))));
    return table(head, rows, 'not placed yet: the layout appears when the job is scheduled');
  }
  const rows = j.layout.map((l: RankLayout) => h('tr', { 'data-rank': l.rank },
    h('td', { class: 'num' }, l.rank),
    h('td', {}, l.workerId ?? j.members?.find((m) => m.rank === l.rank)?.workerId ?? ''),
    h('td', { class: 'num' }, l.replica),
    h('td', {}, l.role === 'replica' ? 'whole model' : `${l.role} ${l.stage}`),
    h('td', {}, l.sections[0] === l.sections[1] ? l.sections[0] : `${l.sections[0]} … ${l.sections[1]}`),
    h('td', { class: 'num', title: l.params.toLocaleString('en') }, count(l.params)),
    h('td', { class: 'num' }, bytes(l.weightBytes)),
    h('td', { class: 'num' }, bytes(l.optimizerBytes)),
    h('td', { class: 'num' }, (l.macs / 1e9).toFixed(3))));
  return table(head, rows, '');
}

export function restartsTable(j: JobView): HTMLTableElement {
  const rows = (j.restarts ?? []).map((r) => h('tr', {},
    h('td', {}, clock(r.at)), h('td', {}, r.worker), h('td', { class: 'err' }, r.cause),
    h('td', { class: 'num' }, r.fromStep), h('td', { class: 'num' }, r.lostSteps), h('td', {}, r.resumedFrom ?? '…')));
  return table(['At', 'Lost worker', 'Cause', 'From step', 'Lost steps', 'Resumed from'], rows, 'no automatic restarts');
}

export function checkpointsTable(cps: CheckpointView[] | null, error?: string): HTMLTableElement {
  if (cps === null) return table(['Step'], [], error ?? 'loading…');
  const rows = [...cps].reverse().map((c) => h('tr', { 'data-step': c.step },
    h('td', { class: 'num' }, c.step), h('td', { class: 'num' }, c.epoch), h('td', {}, `s3://${c.bucket}/${c.key}`),
    h('td', { class: 'num' }, bytes(c.bytes)), h('td', { class: 'muted' }, c.createdAt)));
  return table(['Step', 'Epoch', 'Key', 'Size', 'Written'], rows, 'no committed checkpoint yet');
}

/** Job events newest first; `progress` events are left out (one per logging interval). */
export function eventsTable(events: EventView[], limit = 200): HTMLTableElement {
  const shown = events.filter((e) => e.type !== 'progress').slice(-limit).reverse();
  const rows = shown.map((e) => h('tr', { 'data-event': e.type },
    h('td', { class: 'muted' }, clock(e.ts === undefined ? undefined : Number(e.ts))),
    h('td', { class: e.type === 'rank-failed' ? 'err' : e.type === 'job-state' ? `state s-${e.state}` : '' }, e.type === 'job-state' ? `job ${e.state}` : e.type),
    h('td', { class: 'num' }, Number(e.rank) >= 0 ? e.rank : ''),
    h('td', {}, e.workerId ?? ''),
    h('td', { class: 'num' }, e.step ?? ''),
    h('td', { class: e.type === 'rank-failed' ? 'err' : '' }, e.message ?? e.checkpointKey ?? '')));
  return table(['At', 'Event', 'Rank', 'Worker', 'Step', 'Detail'], rows, 'no events yet');
}

export function logsBlock(lines: LogLine[] | null | undefined, error?: string): HTMLElement {
  if (error) return h('p', { class: 'err' }, error);
  if (lines === undefined) return h('p', { class: 'muted' }, 'loading…');
  if (lines === null || lines.length === 0) return h('p', { class: 'muted', 'data-logs': 'none' }, 'no logs');
  const text = lines.map((l) => [l.ts === undefined ? null : clock(l.ts), l.rank === undefined ? null : `rank ${l.rank}`, l.workerId ?? null, l.level ?? null, l.message]
    .filter((x) => x !== null).join('  ')).join('\n');
  return h('pre', { class: 'logs', 'data-logs': String(lines.length) }, text);
}

export function specBlock(j: JobView): HTMLElement {
  return h('pre', { 'data-spec': '' }, JSON.stringify(j.spec, null, 2));
}
