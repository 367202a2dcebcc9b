import type { Command } from 'commander';
import { ingestDataset, ObjectStore } from '@tensorfleet/data';
import { resolveServices } from '@tensorfleet/infra';
import { progressBar } from '../lib/output';

export function registerData(program: Command): void {
  program
    .command('ingest <format> <path>')
    .description('write a dataset as tar shards + manifest to S3; format: imagenet | cifar10 | cifar100 | idx | folder')
    .requiredOption('--bucket <name>', 'destination bucket')
    .requiredOption('--prefix <prefix>', 'destination prefix (the manifest goes to <prefix>/manifest.json)')
    .option('--shard-mb <n>', 'target shard size in MB', (v) => parseInt(v, 10), 256)
    .option('--json', 'print the manifest as JSON')
    .action(async (format: string, path: string, o) => {
      const services = await resolveServices({ label: 'ingest' });
      let bar: ReturnType<typeof progressBar> | undefined;
      try {
        const store = new ObjectStore(services.s3);
        const manifest = await ingestDataset({
          store,
          format,
          source: path,
          bucket: o.bucket,
          prefix: o.prefix,
          shardBytes: o.shardMb * 1024 * 1024,
          onProgress: (p: any) => {
            bar ??= progressBar('ingest', p.total ?? 0, { ips: '', mbs: '' }, 'ingest |{bar}| {value}/{total} images | {ips} img/s | {mbs} MB/s');
            if (p.total) bar.setTotal(p.total);
            bar.update(p.images, { ips: Number(p.imagesPerSec ?? 0).toFixed(0), mbs: Number(p.mbPerSec ?? 0).toFixed(1) });
          },
        } as any);
        bar?.stop();
        if (o.json) console.log(JSON.stringify(manifest, null, 2));
        else {
          for (const [split, s] of Object.entries((manifest as any).splits) as [string, any][]) {
            console.log(`${split}: ${s.samples} samples in ${s.shards.length} shards`);
          }
          console.log(`manifest: s3://${o.bucket}/${o.prefix}/manifest.json`);
        }
      } finally {
        bar?.stop();
        await services.stop();
      }
    });
}
