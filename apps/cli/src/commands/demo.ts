import type { Command } from 'commander';
import { runDemo } from '../demo/run-demo';
import { progressBar, formatCell } from '../lib/output';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a small training job end to end on this machine (Redis, S3, coordinator, workers): data-parallel, or model-parallel with --model-parallel')
    .option('--workers <n>', 'worker processes', (v) => parseInt(v, 10), 2)
    .option('--epochs <n>', 'epochs over the synthetic dataset (default 4; 2 for alexnet-columns)', (v) => parseInt(v, 10))
    .option('--model <name>', 'registered model (default resnet8; alexnet_paper with --model-parallel alexnet-columns)')
    .option('--model-parallel <kind>', "pipeline (the ResNet in 2 stages) or alexnet-columns (alexnet_paper at 67 px on its 2 columns); workers/2 replicas")
    .option('--json', 'print the result as JSON')
    .action(async (o) => {
      const started = Date.now();
      const log = (m: string) => console.error(`[demo] ${m}`);
      let bar: ReturnType<typeof progressBar> | undefined;
      const result = await runDemo({
        workers: o.workers,
        epochs: o.epochs,
        model: o.model,
        modelParallel: o.modelParallel,
        log,
        onJob: (job) => {
          if (!job.totalSteps || job.state !== 'running') return;
          bar ??= progressBar('training', job.totalSteps, { loss: '', acc: '', ips: '' },
            'training |{bar}| step {value}/{total} | loss {loss} | acc {acc} | {ips} img/s');
          bar.update(job.step ?? 0, { loss: formatCell(job.loss), acc: formatCell(job.accuracy), ips: formatCell(job.imagesPerSec) });
        },
      }).finally(() => bar?.stop());
      const { job, losses } = result;
      if (o.json) {
        console.log(JSON.stringify({ ...result, seconds: (Date.now() - started) / 1000 }, null, 2));
      } else {
        const first = losses.slice(0, 5);
        const last = losses.slice(-5);
        const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / Math.max(1, a.length);
        console.log(`job ${result.jobId}: ${job.state} after ${job.step} steps in ${((Date.now() - started) / 1000).toFixed(0)} s`);
        console.log(`  training loss        ${mean(first).toFixed(3)} (first 5 steps) -> ${mean(last).toFixed(3)} (last 5 steps)`);
        if (job.evalAccuracy !== undefined) {
          console.log(`  held-out loss        ${Number(job.evalLoss).toFixed(3)}`);
          console.log(`  held-out accuracy    ${(Number(job.evalAccuracy) * 100).toFixed(1)}%`);
        }
        console.log(`  logs                 ${result.logDir}`);
      }
      if (job.state !== 'completed') {
        console.error(`fleet demo: the job ended ${job.state}${job.error ? `: ${job.error}` : ''}; logs in ${result.logDir}`);
        process.exit(1);
      }
    });
}
