import type { Command } from 'commander';
import { formatTrainBench, initBackend, runTrainBench } from '@tensorfleet/models';
import { formatBench, runAllreduceBench } from '@tensorfleet/collective';
import { formatBenchTable, runDataBench } from '@tensorfleet/data';
import { resolveServices } from '@tensorfleet/infra';

/** `fleet bench <suite>`: each suite lives beside the code it measures and returns rows. */
export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks: train, allreduce, data (tables; --json for machines)');

  bench
    .command('train')
    .description('images/s of a full training step (forward, backward, SGD-momentum) per model, one thread')
    .option('--steps <n>', 'timed steps per model', (v) => parseInt(v, 10), 5)
    .option('--models <list>', 'comma-separated model:input:batch, e.g. resnet20:32:64')
    .option('--json', 'print JSON')
    .action(async (o) => {
      const backend = await initBackend();
      const models = o.models
        ? String(o.models).split(',').map((s) => {
          const [name, input, batch] = s.split(':');
          return { name, inputSize: Number(input), batchSize: Number(batch) };
        })
        : undefined;
      if (!o.json) console.error(`backend: ${backend.name} (${backend.device}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'})`);
      const rows = await runTrainBench({ models, steps: o.steps, onRow: o.json ? undefined : (r) => console.error(`  ${r.model} b${r.batch}: ${Number(r.imagesPerSec).toFixed(1)} img/s`) });
      if (o.json) console.log(JSON.stringify({ backend, rows }, null, 2));
      else console.log(formatTrainBench(rows));
    });

  bench
    .command('allreduce')
    .description('ring all-reduce over ZeroMQ between processes, like nccl-tests: size, time, algbw, busbw')
    .option('--world-sizes <list>', 'comma-separated world sizes', '2,4')
    .option('--transports <list>', 'ipc,tcp', 'ipc,tcp')
    .option('--max-bytes <n>', 'largest buffer in bytes', (v) => parseInt(v, 10), 256 * 1024 * 1024)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const result = await runAllreduceBench({
        worldSizes: String(o.worldSizes).split(',').map(Number),
        transports: String(o.transports).split(',') as ('ipc' | 'tcp')[],
        maxBytes: o.maxBytes,
      });
      if (o.json) return console.log(JSON.stringify(result, null, 2));
      console.log(formatBench(result));
    });

  bench
    .command('data')
    .description('ingestion MB/s to S3 and loader images/s (decode + ResNet augmentation + batching)')
    .option('--images <n>', 'generated ImageNet-sized JPEGs', (v) => parseInt(v, 10), 512)
    .option('--json', 'print JSON')
    .action(async (o) => {
      const services = await resolveServices({ label: 'bench' });
      try {
        const result = await runDataBench({ s3: services.s3, images: o.images, log: o.json ? undefined : (l) => console.error(l) });
        if (o.json) return console.log(JSON.stringify(result, null, 2));
        console.log(formatBenchTable(result));
      } finally {
        await services.stop();
      }
    });
}
