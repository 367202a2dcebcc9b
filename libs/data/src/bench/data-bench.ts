import { mkdtemp, mkdir, writeFile, rm } from 'node:fs/promises';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { ObjectStore, S3Config } from '../store/object-store';
import { ingestDataset } from '../ingest/ingest';
import { ShardLoader } from '../loader/shard-loader';
import { Rng } from '../rng';
import { badOption } from '../errors';
import { threadCpuSeconds } from '../loader/thread-cpu';
import { runStageBench, StageRow } from './stage-bench';
import { jpegDecoder } from '../loader/jpeg-native';

export interface DataBenchOptions {
  s3?: S3Config;
  store?: ObjectStore;
  /** Generated ImageNet-sized (~500×375) JPEGs. Default 512. */
  images?: number;
  /** Decode thread counts for the loader rows. Default [1, all cores]. */
  threads?: number[];
  /** Default 32. */
  batchSize?: number;
  /** Default 224. */
  inputSize?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export interface DataBenchRow {
  /** loader-recycled: the consumer hands each batch back with loader.recycle(). */
  stage: 'put' | 'ingest' | 'loader' | 'loader-recycled';
  /** loader: decode threads; ingest: validation concurrency. */
  threads: number;
  images: number;
  seconds: number;
  imagesPerSec: number;
  mbPerSec: number;
  /** imagesPerSec / cores busy (the decode threads for the loader). */
  imagesPerSecPerCore: number;
  /** CPU seconds this process used (all its threads): images per CPU-second is the per-core rate free of other load on the host. */
  cpuSeconds: number;
  imagesPerCpuSec: number;
  /**
   * loader: CPU ms per image on the loader's thread (fetch, tar parsing, batching), on the decode
   * threads (libjpeg-turbo decode, resize, messages; sharp's decode when it is the decoder runs on
   * libvips' threads instead), and on all other threads (libvips, libuv I/O, GC): the rest of cpuSeconds.
   */
  cpuMsPerImage?: { loaderThread: number; decodeThreads: number; otherThreads: number };
}

export interface DataBenchResult {
  rows: DataBenchRow[];
  cores: number;
  imageBytesMean: number;
  /** One decode thread's CPU per image, stage by stage (decode + ResNet augmentation). */
  stages: StageRow[];
  /** What decoded the JPEGs: libjpeg-turbo (the addon) or sharp, with why. */
  decoder: { name: string; reason?: string };
  note: string;
}

const W = 500;
const H = 375;

/** Noisy textured JPEGs, each distinct, about the size and entropy of an average ImageNet photo. */
async function makeImages(dir: string, n: number, classes: number): Promise<{ bytes: number; sample: Buffer[] }> {
  const rng = new Rng(12345);
  const bases: Buffer[] = [];
  for (let b = 0; b < 8; b++) {
    const px = Buffer.alloc((W + 40) * (H + 40) * 3);
    const fx = rng.uniform(0.01, 0.05), fy = rng.uniform(0.01, 0.05);
    for (let y = 0; y < H + 40; y++) {
      for (let x = 0; x < W + 40; x++) {
        const v = 128 + 60 * Math.sin(fx * x + 3 * Math.sin(fy * y)) ;
        for (let c = 0; c < 3; c++) px[(y * (W + 40) + x) * 3 + c] = Math.max(0, Math.min(255, v + (c - 1) * 30 * Math.cos(fy * x) + rng.normal() * 18));
      }
    }
    bases.push(px);
  }
  let bytes = 0;
  const sample: Buffer[] = [];
  for (let c = 0; c < classes; c++) await mkdir(join(dir, `class${c}`), { recursive: true });
  for (let i = 0; i < n; i += 16) {
    const jobs = Array.from({ length: Math.min(16, n - i) }, async (_, k) => {
      const j = i + k;
      const jpg = await sharp(bases[j % 8], { raw: { width: W + 40, height: H + 40, channels: 3 } })
        .extract({ left: Math.floor(j / 8) % 40, top: Math.floor(j / 320) % 40, width: W, height: H })
        .jpeg({ quality: 90 })
        .toBuffer();
      await writeFile(join(dir, `class${j % classes}`, `img${String(j).padStart(6, '0')}.jpg`), jpg);
      return jpg;
    });
    for (const b of await Promise.all(jobs)) {
      bytes += b.length;
      if (sample.length < 64) sample.push(b);
    }
  }
  return { bytes, sample };
}

/** Ingestion MB/s to S3 and loader images/s (decode + ResNet augmentation + batching). */
export async function runDataBench(opts: DataBenchOptions): Promise<DataBenchResult> {
  const cores = cpus().length;
  const o = {
    images: opts.images ?? 512,
    threads: opts.threads ?? [1, cores],
    batchSize: opts.batchSize ?? 32,
    inputSize: opts.inputSize ?? 224,
    log: opts.log ?? (() => undefined),
  };
  if (!(o.images >= o.batchSize)) throw badOption('images', o.images, `at least batchSize (${o.batchSize})`);
  const store = opts.store ?? (opts.s3 ? new ObjectStore(opts.s3) : null);
  if (!store) throw badOption('s3', undefined, 'an S3Config or an ObjectStore');
  const dir = await mkdtemp(join(tmpdir(), 'tf-data-bench-'));
  const bucket = `tf-data-bench-${randomBytes(4).toString('hex')}`;
  const rows: DataBenchRow[] = [];
  try {
    o.log(`generating ${o.images} ${W}x${H} JPEGs in ${dir}`);
    const { bytes: srcBytes, sample } = await makeImages(dir, o.images, 10);
    o.log('decode-thread stages');
    const stages = await runStageBench(sample, o.inputSize);
    // The S3 server's own ceiling: 8 MB puts, 3 at once (as the shard writer does).
    o.log('raw puts');
    await store.ensureBucket(bucket);
    const blob = Buffer.alloc(8 * 1024 * 1024, 7);
    const tp = process.hrtime.bigint();
    const cp = process.cpuUsage();
    await Promise.all([0, 1, 2].map(async (k) => {
      for (let i = k; i < 6; i += 3) await store.putObject(bucket, `put/${i}`, blob);
    }));
    const ps = Number(process.hrtime.bigint() - tp) / 1e9;
    const pc = cpuSince(cp);
    rows.push({ stage: 'put', threads: 3, images: 0, seconds: ps, imagesPerSec: 0, mbPerSec: (6 * blob.length) / 1e6 / ps, imagesPerSecPerCore: 0, cpuSeconds: pc, imagesPerCpuSec: 0 });
    o.log('ingesting');
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const ing = await ingestDataset({ format: 'folder', path: dir, store, bucket, prefix: 'bench', shardBytes: 8 * 1024 * 1024 });
    const sec = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSince(c0);
    rows.push({ stage: 'ingest', threads: 2 * cores, images: ing.ingest.images, seconds: sec, imagesPerSec: ing.ingest.images / sec, mbPerSec: ing.ingest.bytes / 1e6 / sec, imagesPerSecPerCore: ing.ingest.images / sec / cores, cpuSeconds: cpu, imagesPerCpuSec: ing.ingest.images / cpu });
    // The worker hands every batch back (recycle), so those rows are the training loop's rate; one
    // row without shows what allocating a fresh batch array each time costs.
    const runs = [{ threads: o.threads[0], recycle: false }, ...o.threads.map((t) => ({ threads: t, recycle: true }))];
    for (const { threads, recycle } of runs) {
      o.log(`loader with ${threads} decode thread(s)${recycle ? ', batches recycled' : ''}`);
      const l = new ShardLoader({ store, bucket, prefix: 'bench', split: 'train', rank: 0, worldSize: 1, seed: 1, batchSize: o.batchSize, pipeline: 'resnet', inputSize: o.inputSize, decodeThreads: threads, prefetch: 4 });
      await l.init();
      const t1 = process.hrtime.bigint();
      const c1 = process.cpuUsage();
      const m1 = threadCpuSeconds() ?? 0;
      let n = 0;
      for await (const b of l.batches(0)) {
        n += b.size;
        if (recycle) l.recycle(b);
      }
      const main = (threadCpuSeconds() ?? 0) - m1;
      const s = Number(process.hrtime.bigint() - t1) / 1e9;
      const cpu = cpuSince(c1);
      const js = l.stats.decodeThreadCpuSeconds;
      const perImage = { loaderThread: (main * 1e3) / n, decodeThreads: (js * 1e3) / n, otherThreads: ((cpu - main - js) * 1e3) / n };
      rows.push({ stage: recycle ? 'loader-recycled' : 'loader', threads, images: n, seconds: s, imagesPerSec: n / s, mbPerSec: l.stats.bytesRead / 1e6 / s, imagesPerSecPerCore: n / s / Math.max(1, threads), cpuSeconds: cpu, imagesPerCpuSec: n / cpu, cpuMsPerImage: perImage });
    }
    return { rows, cores, imageBytesMean: srcBytes / o.images, stages, decoder: jpegDecoder(), note: `${cores} cores shared with other work; loader = fetch + decode + random-resized crop ${o.inputSize} + flip + normalise + batch ${o.batchSize}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await store.removeAll(bucket).catch(() => undefined);
  }
}

function cpuSince(c0: NodeJS.CpuUsage): number {
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1e6;
}

export function formatBenchTable(r: DataBenchResult): string {
  const head = ['stage', 'threads', 'images', 'seconds', 'images/s', 'MB/s', 'images/s/core', 'cpu s', 'images/cpu-s'];
  const lines = r.rows.map((x) => [x.stage, String(x.threads), String(x.images), x.seconds.toFixed(2), x.imagesPerSec.toFixed(1), x.mbPerSec.toFixed(1), x.imagesPerSecPerCore.toFixed(1), x.cpuSeconds.toFixed(2), x.imagesPerCpuSec.toFixed(1)]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l: string[]) => l.map((c, i) => c.padStart(w[i])).join('  ');
  const split = r.rows
    .filter((x) => x.cpuMsPerImage)
    .map((x) => `${x.stage}, ${x.threads} decode thread(s): CPU ms/image ${(1e3 / x.imagesPerCpuSec).toFixed(2)} = loader thread ${x.cpuMsPerImage!.loaderThread.toFixed(2)} + decode threads ${x.cpuMsPerImage!.decodeThreads.toFixed(2)} + other threads (libvips, I/O, GC) ${x.cpuMsPerImage!.otherThreads.toFixed(2)}`);
  const sw = Math.max(...r.stages.map((x) => x.stage.length));
  const stages = r.stages.map((x) => `  ${x.stage.padEnd(sw)}  ${x.cpuMs.toFixed(2)} ms`);
  return [fmt(head), ...lines.map(fmt), `mean JPEG ${(r.imageBytesMean / 1024).toFixed(0)} KiB; ${r.note}`, `JPEG decoder: ${r.decoder.name}${r.decoder.reason ? ` (${r.decoder.reason})` : ''}`, ...split, 'one decode thread, CPU per image (steps interleaved image by image; fastest of 5 rounds over 64 images):', ...stages].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const images = args.includes('--images') ? Number(args[args.indexOf('--images') + 1]) : undefined;
  // Only this command-line entry point needs services; the library itself never imports infra.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { resolveServices } = require('@tensorfleet/infra') as typeof import('@tensorfleet/infra');
  const services = await resolveServices({ label: 'data-bench' });
  try {
    const r = await runDataBench({ s3: services.s3, images, log: args.includes('--json') ? undefined : (l) => console.error(`# ${l}`) });
    console.log(args.includes('--json') ? JSON.stringify(r, null, 2) : formatBenchTable(r));
  } finally {
    await services.stop();
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
