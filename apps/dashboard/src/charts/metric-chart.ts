import uPlot from 'uplot';
import type { Columns } from './metric-series';

export interface LineSpec {
  label: string;
  color: string;
  /** Dots only (held-out evaluations are a few points, not a curve). */
  dots?: boolean;
}

const HEIGHT = 220;

/**
 * One uPlot chart over steps. `data-points` on the element is the number of steps drawn,
 * which the browser test reads to see the chart grow.
 */
export class MetricChart {
  readonly el: HTMLElement;
  private readonly plot: uPlot;
  private readonly resize: ResizeObserver;

  constructor(parent: HTMLElement, name: string, title: string, lines: LineSpec[], valueFormat: (v: number) => string) {
    this.el = document.createElement('div');
    this.el.className = 'chart';
    this.el.dataset.chart = name;
    this.el.dataset.points = '0';
    parent.append(this.el);
    const opts: uPlot.Options = {
      title,
      width: Math.max(300, this.el.clientWidth || 500),
      height: HEIGHT,
      scales: { x: { time: false } },
      series: [
        { label: 'step' },
        ...lines.map((l): uPlot.Series => ({
          label: l.label,
          stroke: l.color,
          width: 1.5,
          spanGaps: true,
          value: (_u, v) => (v === null || v === undefined ? '–' : valueFormat(v)),
          ...(l.dots ? { paths: () => null, points: { show: true, size: 7, fill: l.color } } : { points: { show: false } }),
        })),
      ],
      axes: [{ label: 'step' }, { values: (_u, ticks) => ticks.map(valueFormat), size: 60 }],
      legend: { live: true },
    };
    this.plot = new uPlot(opts, [[], ...lines.map(() => [])] as uPlot.AlignedData, this.el);
    this.resize = new ResizeObserver(() => {
      const w = this.el.clientWidth;
      if (w > 0 && Math.abs(w - this.plot.width) > 2) this.plot.setSize({ width: w, height: HEIGHT });
    });
    this.resize.observe(this.el);
  }

  setData(columns: Columns): void {
    this.plot.setData(columns as uPlot.AlignedData);
    this.el.dataset.points = String(columns[0].length);
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot.destroy();
  }
}
