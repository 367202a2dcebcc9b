import { ModelInfo } from './registry';

const human = (n: number, unit: string) =>
  n >= 1e9 ? `${(n / 1e9).toFixed(2)} G${unit}` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M${unit}` : `${(n / 1e3).toFixed(1)} K${unit}`;

/** `fleet models` table: one line per model, parameters exact and multiply-adds per image. */
export function formatModelTable(models: ModelInfo[]): string {
  const rows = [['model', 'family', 'params', 'MACs/image', 'input', 'classes', 'description']];
  for (const m of models) {
    rows.push([m.name, m.family, m.params.toLocaleString('en-US'), human(m.macs, 'MAC'), String(m.defaultInputSize), String(m.numClasses), m.description]);
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const right = new Set([2, 3, 4, 5]);
  return rows
    .map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : right.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join('  '))
    .join('\n');
}
