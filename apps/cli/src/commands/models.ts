import type { Command } from 'commander';
import { listModels } from '@tensorfleet/models';
import { printTable } from '../lib/output';

export function registerModels(program: Command): void {
  program
    .command('models')
    .description('list the registered models with trainable parameters and multiply-adds per image')
    .option('--json', 'print JSON')
    .action((o) => {
      const models = listModels();
      if (o.json) return console.log(JSON.stringify(models, null, 2));
      printTable(models.map((m) => ({
        model: m.name,
        family: m.family,
        input: `${m.defaultInputSize}x${m.defaultInputSize}`,
        classes: m.numClasses,
        params: m.params,
        'GMACs': Number((m.macs / 1e9).toFixed(3)),
      })));
    });
}
