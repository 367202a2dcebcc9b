import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { confinedPath, createModel, initBackend, loadExportedModel, ModelIoError, predictImage } from '@tensorfleet/models';
import { fail, printTable } from '../lib/output';

export function registerPredict(program: Command): void {
  program
    .command('predict <model> <image>')
    .description('top-5 classes of a JPEG/PNG image; <model> is an exported model folder (model.json) or a registered model name')
    .option('--classes <file>', 'class names, one per line (default: class ids)')
    .option('--input-size <n>', 'input size for a registered model', (v) => parseInt(v, 10))
    .option('--base-dir <dir>', 'only open model folders inside this one (relative <model> is relative to it; ".." and links out of it are refused); default FLEET_MODEL_DIR', process.env.FLEET_MODEL_DIR)
    .option('--json', 'print JSON')
    .action(async (modelName: string, imagePath: string, o) => {
      let modelArg = modelName;
      if (o.baseDir) {
        try {
          modelArg = confinedPath(o.baseDir, modelName, '<model>');
        } catch (e) {
          if (e instanceof ModelIoError) fail(e.message);
          throw e;
        }
      }
      await initBackend();
      const isDir = (() => { try { return statSync(`${modelArg}/model.json`).isFile(); } catch { return false; } })();
      const model = isDir ? await loadExportedModel(modelArg) : createModel(modelArg, { inputSize: o.inputSize });
      if (!isDir) console.error(`fleet: ${modelArg} is not an exported model folder: using freshly initialised weights (export a trained model to predict meaningfully)`);
      const classNames = o.classes ? readFileSync(o.classes, 'utf8').split('\n').filter(Boolean) : undefined;
      const top = await predictImage(model, readFileSync(imagePath), { k: 5, classNames });
      if (o.json) return console.log(JSON.stringify(top, null, 2));
      printTable(top.map((t, i) => ({ rank: i + 1, class: t.className, id: t.classIndex, probability: t.probability })));
    });
}
