import { MetricChart } from '../charts/metric-chart';
import { MetricSeries } from '../charts/metric-series';
import { h, section } from '../dom';
import { allowedActions, LOG_PAGE, TERMINAL_STATES, type CheckpointView, type DashboardApi, type EventView, type JobAction, type JobBrief, type JobView, type LogLine, type MetricView } from '../api/client';
import { checkpointsTable, eventsTable, jobCards, layoutTable, logsBlock, restartsTable, specBlock } from './job-sections';
import { pausingNote, stateCell } from './job-cells';

const SIDE_POLL_MS = 5000;
const MAX_LOG_LINES = 500;

/**
 * A job's page. The record, its metrics and events come over the job's event stream
 * (after the metric history is read page by page); checkpoints and logs are polled.
 */
export class JobPage {
  private job: JobView | null = null;
  private readonly series = new MetricSeries();
  private readonly events: EventView[] = [];
  private charts: { chart: MetricChart; draw: () => void }[] = [];
  private source: EventSource | null = null;
  private timer: ReturnType<typeof setInterval> | undefined;
  private drawPending = false;
  /** Id of the newest metric read: where a new feed goes on from. */
  private metricsCursor = '0';
  /** The newest log lines read (at most MAX_LOG_LINES), and where the next read goes on from. */
  private logLines: LogLine[] | null | undefined = undefined;
  private logsCursor = '0';
  private stopped = false;

  private readonly titleEl = h('div', { class: 'title' });
  private readonly cardsEl = h('div', { class: 'cards' });
  private readonly chartsEl = h('div', { class: 'charts', id: 'charts' });
  private readonly layoutEl = h('div');
  private readonly restartsEl = h('div');
  private readonly checkpointsEl = h('div');
  private readonly eventsEl = h('div');
  private readonly logsEl = h('div');
  private readonly specEl = h('div');
  private readonly messageEl = h('p', { class: 'err', id: 'action-error' });

  constructor(private readonly api: DashboardApi, private readonly root: HTMLElement, private readonly id: string) {}

  async start(): Promise<void> {
    this.root.replaceChildren(
      this.titleEl, this.messageEl, this.cardsEl, this.chartsEl,
      section('Layout of ranks', this.layoutEl, { class: 'wide', id: 'layout' }),
      section('Restarts', this.restartsEl, { id: 'restarts' }),
      section('Checkpoints', this.checkpointsEl, { id: 'checkpoints' }),
      section('Events', this.eventsEl, { class: 'wide', id: 'events' }),
      section('Logs', this.logsEl, { class: 'wide', id: 'logs' }),
      section('Spec', this.specEl, { class: 'wide', id: 'spec' }),
    );
    this.titleEl.append(h('h2', {}, this.id));
    this.makeCharts();
    this.logsEl.replaceChildren(logsBlock(undefined));
    this.checkpointsEl.replaceChildren(checkpointsTable(null));
    try {
      this.setJob(await this.api.job(this.id));
      this.specEl.replaceChildren(specBlock(this.job!));
      const next = await this.loadMetricHistory();
      if (this.stopped) return;
      this.follow(next);
    } catch (e) {
      this.messageEl.textContent = (e as Error).message;
      return;
    }
    void this.pollSides();
    this.timer = setInterval(() => void this.pollSides(), SIDE_POLL_MS);
  }

  stop(): void {
    this.stopped = true;
    this.source?.close();
    clearInterval(this.timer);
    for (const c of this.charts) c.chart.destroy();
    this.charts = [];
  }

  private makeCharts(): void {
    const add = (name: string, title: string, lines: ConstructorParameters<typeof MetricChart>[3], fmt: (v: number) => string, data: () => Parameters<MetricChart['setData']>[0]) => {
      const chart = new MetricChart(this.chartsEl, name, title, lines, fmt);
      this.charts.push({ chart, draw: () => chart.setData(data()) });
    };
    const train = '#2f6fed';
    const held = '#1f9d55';
    add('loss', 'Loss', [{ label: 'training', color: train }, { label: 'held-out', color: held, dots: true }], (v) => v.toFixed(3), () => this.series.pair('loss'));
    add('accuracy', 'Accuracy', [{ label: 'training', color: train }, { label: 'held-out', color: held, dots: true }], (v) => `${(v * 100).toFixed(0)}%`, () => this.series.pair('accuracy'));
    add('lr', 'Learning rate', [{ label: 'lr', color: '#8a4fd8' }], (v) => v.toPrecision(2), () => this.series.single('lr'));
    add('throughput', 'Throughput (images / s, all ranks)', [{ label: 'images/s', color: '#c98a0b' }], (v) => v.toFixed(0), () => this.series.single('imagesPerSec'));
  }

  /** Reads every metric so far, 10,000 at a time; returns the cursor the stream goes on from. */
  private async loadMetricHistory(): Promise<string> {
    let from = '0';
    for (;;) {
      const page = await this.api.metrics(this.id, from);
      for (const m of page.entries) this.series.add(m);
      if (page.entries.length === 0 || page.next === from) break;
      from = page.next;
      if (page.entries.length < 10_000) break;
    }
    this.scheduleDraw();
    this.metricsCursor = from;
    return from;
  }

  private follow(metricsFrom: string): void {
    const src = new EventSource(this.api.eventsUrl(this.id, metricsFrom));
    this.source = src;
    src.addEventListener('metric', (e) => {
      const m = JSON.parse((e as MessageEvent).data) as MetricView;
      if (m.id) this.metricsCursor = m.id;
      if (this.series.add(m)) this.scheduleDraw();
    });
    src.addEventListener('job', (e) => {
      const brief = JSON.parse((e as MessageEvent).data) as JobBrief;
      if (this.job) this.setJob({ ...brief, spec: this.job.spec });
    });
    src.addEventListener('event', (e) => {
      const ev = JSON.parse((e as MessageEvent).data) as EventView;
      this.events.push(ev);
      if (this.events.length > 5000) this.events.splice(0, this.events.length - 5000);
      this.eventsEl.replaceChildren(eventsTable(this.events));
      if (ev.type === 'checkpoint') void this.pollSides();
    });
    src.addEventListener('end', () => {
      src.close();
      // One last read: the final record, checkpoints and log lines.
      void this.api.job(this.id).then((j) => this.setJob(j)).catch(() => undefined);
      void this.pollSides();
    });
    this.eventsEl.replaceChildren(eventsTable(this.events));
  }

  private scheduleDraw(): void {
    if (this.drawPending) return;
    this.drawPending = true;
    setTimeout(() => {
      this.drawPending = false;
      if (!this.stopped) for (const c of this.charts) c.draw();
    }, 100);
  }

  private setJob(j: JobView): void {
    this.job = j;
    const allowed = allowedActions(j);
    const button = (a: JobAction, label: string, cls = '') => h('button', {
      'data-action': a, class: cls, disabled: !allowed.has(a), onclick: () => void this.act(a),
    }, label);
    this.titleEl.replaceChildren(
      h('h2', {}, j.name ?? j.id),
      j.name ? h('span', { class: 'sub' }, j.id) : '',
      h('span', { class: 'sub' }, `${j.spec.model.name} · ${j.spec.parallelism.modelParallel ? j.spec.parallelism.modelParallel.kind : 'data parallel'} · ${j.spec.parallelism.dataParallel} replica(s)`),
      h('table', { style: 'width:auto' }, h('tbody', {}, h('tr', {}, stateCell(j.state, pausingNote(j))))),
      j.error ? h('span', { class: 'err', id: 'job-error' }, j.error) : '',
      h('div', { class: 'actions' }, button('pause', 'Pause'), button('resume', 'Resume'), button('cancel', 'Cancel', 'danger')),
    );
    this.titleEl.dataset.state = j.state;
    this.cardsEl.replaceChildren(...jobCards(j));
    this.layoutEl.replaceChildren(layoutTable(j));
    this.restartsEl.replaceChildren(restartsTable(j));
  }

  private async act(a: JobAction): Promise<void> {
    if (!this.job) return;
    if (a === 'cancel' && !window.confirm(`Cancel job ${this.job.name ?? this.id}? Its ranks stop; checkpoints stay.`)) return;
    this.messageEl.textContent = '';
    try {
      const j = await this.api.action(this.id, a);
      this.setJob({ ...j, spec: j.spec ?? this.job.spec });
      // A resumed job gets a new run: follow its feed from here.
      if (a === 'resume' && (!this.source || this.source.readyState === EventSource.CLOSED)) {
        this.events.length = 0;
        this.follow(this.metricsCursor);
      }
    } catch (e) {
      this.messageEl.textContent = `${a} failed: ${(e as Error).message}`;
    }
  }

  private async pollSides(): Promise<void> {
    const [cps, logs] = await Promise.allSettled([this.api.checkpoints(this.id), this.readNewLogs()]);
    if (this.stopped) return;
    this.checkpointsEl.replaceChildren(cps.status === 'fulfilled'
      ? checkpointsTable(cps.value as CheckpointView[])
      : checkpointsTable(null, `checkpoints: ${(cps.reason as Error).message}`));
    this.logsEl.replaceChildren(logs.status === 'fulfilled'
      ? logsBlock(this.logLines)
      : logsBlock(undefined, `logs: ${(logs.reason as Error).message}`));
    if (this.job && TERMINAL_STATES.includes(this.job.state) && this.source?.readyState === EventSource.CLOSED) clearInterval(this.timer);
  }

  /** Reads the log lines after the cursor, page by page, keeping the newest MAX_LOG_LINES. */
  private async readNewLogs(): Promise<void> {
    for (;;) {
      const page = await this.api.logs(this.id, this.logsCursor);
      if (page === null) {
        this.logLines = null;
        return;
      }
      const lines = [...(this.logLines ?? []), ...page.lines];
      this.logLines = lines.slice(-MAX_LOG_LINES);
      const moved = page.next !== this.logsCursor;
      this.logsCursor = page.next;
      if (!moved || page.lines.length < LOG_PAGE) return;
    }
  }
}
