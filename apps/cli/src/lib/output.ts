import { SingleBar, Presets } from 'cli-progress';

/** Prints rows as an aligned text table (numbers right-aligned). */
export function printTable(rows: Record<string, unknown>[], columns?: string[]): void {
  if (rows.length === 0) {
    console.log('(none)');
    return;
  }
  const cols = columns ?? Object.keys(rows[0]);
  const cells = rows.map((r) => cols.map((c) => formatCell(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const numeric = cols.map((_, i) => rows.every((r) => typeof r[cols[i]] === 'number' || r[cols[i]] === undefined));
  const line = (vals: string[]) => vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ');
  console.log(line(cols));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells) console.log(line(row));
}

export function formatCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    return Math.abs(v) >= 100 ? v.toFixed(1) : Math.abs(v) >= 1 ? v.toFixed(3) : v.toPrecision(3);
  }
  return String(v);
}

/** A progress bar on a terminal; plain log lines every `every` updates when not a TTY (CI). */
export function progressBar(label: string, total: number, fields: Record<string, string> = {}, format?: string) {
  if (!process.stderr.isTTY) {
    let last = -1;
    return {
      update(value: number, f: Record<string, string> = {}) {
        const pct = Math.floor((100 * value) / Math.max(1, total));
        if (pct >= last + 10 || (value === total && last < 100)) {
          last = value === total ? 100 : pct;
          console.error(`${label} ${value}/${total} (${pct}%) ${Object.entries(f).map(([k, v]) => `${k} ${v}`).join(' ')}`);
        }
      },
      setTotal(t: number) { total = t; },
      stop() {},
    };
  }
  const bar = new SingleBar(
    { format: format ?? `${label} |{bar}| {value}/{total} {percentage}% | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr },
    Presets.shades_classic,
  );
  bar.start(total, 0, fields);
  return {
    update: (value: number, f: Record<string, string> = {}) => bar.update(value, f),
    setTotal: (t: number) => bar.setTotal(t),
    stop: () => bar.stop(),
  };
}

export function fail(message: string): never {
  console.error(`fleet: ${message}`);
  process.exit(1);
}
