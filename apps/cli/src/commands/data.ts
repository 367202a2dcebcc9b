import type { Command } from 'commander';
import { datasetPrefixProblem } from '@tensorfleet/control';
import { ingestDataset, ObjectStore, type IngestFormat, type IngestProgress } from '@tensorfleet/data';
import { clusterS3 } from '../lib/cluster-s3';
import { fail, progressBar } from '../lib/output';

/** Skipped files listed one by one up to this many; the rest are counted. */
const LIST_SKIPPED = 20;

export function registerData(program: Command): void {
  program
    .command('ingest <format> <path>')
    .description('write a dataset as tar shards + manifest to S3; format: imagenet | cifar10 | cifar100 | idx | folder')
    .requiredOption('--bucket <name>', 'destination bucket')
    .requiredOption('--prefix <prefix>', 'destination prefix (the manifest goes to <prefix>/manifest.json)')
    .option('--shard-mb <n>', 'target shard size in MB', (v) => parseInt(v, 10), 256)
    .option('--samples-per-shard <n>', 'also cap the samples per shard (more, equal shards split evenly over many ranks)', (v) => parseInt(v, 10))
    .option('--json', 'print the manifest as JSON')
    .action(async (format: string, path: string, o: { bucket: string; prefix: string; shardMb: number; samplesPerShard?: number; json?: boolean }) => {
      // The prefix a job spec may name later (dataset.prefix): plain segments, not under checkpoints/.
      const problem = o.prefix.startsWith('/') || o.prefix.endsWith('/') ? 'must not start or end with "/"' : datasetPrefixProblem(o.prefix);
      if (problem) fail(`--prefix ${o.prefix}: ${problem}`);
      const s3 = clusterS3('fleet ingest');
      let bar: ReturnType<typeof progressBar> | undefined;
      try {
        const store = new ObjectStore(s3);
        const manifest = await ingestDataset({
          store,
          format: format as IngestFormat,
          source: path,
          bucket: o.bucket,
          prefix: o.prefix,
          shardBytes: o.shardMb * 1024 * 1024,
          samplesPerShard: o.samplesPerShard,
          onProgress: (p: IngestProgress) => {
            bar ??= progressBar('ingest', p.total, { ips: '', mbs: '' }, 'ingest |{bar}| {value}/{total} images | {ips} img/s | {mbs} MB/s');
            bar.setTotal(p.total);
            bar.update(p.images, { ips: p.imagesPerSec.toFixed(0), mbs: p.mbPerSec.toFixed(1) });
          },
        });
        bar?.stop();
        // Unreadable images are left out of the dataset, never silently: each is named here.
        const { skipped } = manifest.ingest;
        if (skipped.length) {
          console.error(`skipped ${skipped.length} unreadable image(s), left out of the dataset:`);
          for (const s of skipped.slice(0, LIST_SKIPPED)) console.error(`  ${s.file}: ${s.reason}`);
          if (skipped.length > LIST_SKIPPED) console.error(`  ... and ${skipped.length - LIST_SKIPPED} more (--json lists them all)`);
        }
        if (o.json) console.log(JSON.stringify(manifest, null, 2));
        else {
          for (const [split, s] of Object.entries(manifest.splits)) {
            console.log(`${split}: ${s.samples} samples in ${s.shards.length} shards`);
          }
          console.log(`manifest: s3://${o.bucket}/${o.prefix}/manifest.json`);
        }
      } finally {
        bar?.stop();
      }
    });
}
