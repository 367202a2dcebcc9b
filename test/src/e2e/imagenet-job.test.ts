// ImageNet as users keep it, end to end: an ILSVRC-2012 tree of JPEGs (real synset ids, one
// unreadable file) goes through `fleet ingest imagenet`, a real process, into S3; two workers then
// train on it with the ResNet pipeline (random-resized crops of JPEGs, decoded in the loader's
// threads by libjpeg-turbo where it is built) and evaluate with resize + centre crop.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { Rng } from '@tensorfleet/data';
import { followJob, serviceEnv, type LocalCluster } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';

const SYNSETS: [string, string, [number, number, number]][] = [
  ['n01440764', 'tench, Tinca tinca', [200, 60, 50]],
  ['n01443537', 'goldfish, Carassius auratus', [60, 190, 70]],
  ['n01484850', 'great white shark, white shark, man-eater', [50, 70, 200]],
  ['n01491361', 'tiger shark, Galeocerdo cuvieri', [210, 200, 60]],
];
const TRAIN_PER_CLASS = 40;
const VAL_PER_CLASS = 12;

/** A 120×90 JPEG of the class's colour under a texture and noise: learnable, and each one different. */
async function photo(colour: [number, number, number], rng: Rng): Promise<Buffer> {
  const w = 120;
  const h = 90;
  const px = Buffer.alloc(w * h * 3);
  const fx = rng.uniform(0.05, 0.3);
  const fy = rng.uniform(0.05, 0.3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const t = 40 * Math.sin(fx * x) * Math.cos(fy * y);
      for (let c = 0; c < 3; c++) px[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(colour[c] + t + rng.normal() * 20)));
    }
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

async function writeImageNetTree(root: string): Promise<void> {
  const rng = new Rng(2012);
  writeFileSync(join(root, 'LOC_synset_mapping.txt'), SYNSETS.map(([w, n]) => `${w} ${n}`).join('\n') + '\n');
  const valLines: string[] = [];
  mkdirSync(join(root, 'val'), { recursive: true });
  let v = 0;
  for (const [wnid, , colour] of SYNSETS) {
    mkdirSync(join(root, 'train', wnid), { recursive: true });
    for (let i = 0; i < TRAIN_PER_CLASS; i++) writeFileSync(join(root, 'train', wnid, `${wnid}_${i}.JPEG`), await photo(colour, rng));
    for (let i = 0; i < VAL_PER_CLASS; i++) {
      const file = `ILSVRC2012_val_${String(++v).padStart(8, '0')}.JPEG`;
      writeFileSync(join(root, 'val', file), await photo(colour, rng));
      valLines.push(`${file} ${wnid}`);
    }
  }
  writeFileSync(join(root, 'val.txt'), valLines.join('\n') + '\n');
  // Half a JPEG, as a copy interrupted mid-file leaves it.
  const good = await photo(SYNSETS[0][2], rng);
  writeFileSync(join(root, 'train', SYNSETS[0][0], `${SYNSETS[0][0]}_truncated.JPEG`), good.subarray(0, good.length >> 1));
}

describe('an ImageNet-layout JPEG dataset, ingested by the CLI and trained on with the ResNet pipeline', { timeout: 15 * 60_000 }, () => {
  let cluster: LocalCluster;
  let root: string;
  const bucket = uniqueBucket('imagenet');
  const prefix = 'datasets/ilsvrc-mini';

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tf-ilsvrc-'));
    await writeImageNetTree(root);
    cluster = await startTestCluster({ name: 'imagenet-job', workers: 2 });
  });

  after(async () => {
    await cluster?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('fleet ingest without the cluster S3 settings fails saying which, and starts no private store', async () => {
    const env = { ...process.env };
    for (const k of ['S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'XDG_STATE_HOME']) delete env[k];
    // A home without a `fleet up` cluster, which ingest would otherwise find and use.
    env.HOME = mkdtempSync(join(tmpdir(), 'fleet-no-cluster-'));
    const run = promisify(execFile)(process.execPath, [require.resolve('@tensorfleet/cli/bin/fleet.js'), 'ingest', 'imagenet', root, '--bucket', bucket, '--prefix', prefix], { encoding: 'utf8', env });
    await assert.rejects(run, (e: Error & { code?: number; stderr?: string }) => {
      assert.equal(e.code, 1);
      assert.match(e.stderr ?? '', /fleet ingest needs your cluster's object store: start a local cluster with `fleet up`, or set S3_ENDPOINT, S3_ACCESS_KEY and S3_SECRET_KEY/);
      assert.doesNotMatch(e.stderr ?? '', /swift|starting/i);
      return true;
    });
  });

  it('fleet ingest imagenet names the unreadable file, writes both splits, and a job trains on them', async (t) => {
    const run = await promisify(execFile)(process.execPath, [require.resolve('@tensorfleet/cli/bin/fleet.js'), 'ingest', 'imagenet', root, '--bucket', bucket, '--prefix', prefix, '--samples-per-shard', '40'], {
      encoding: 'utf8',
      env: { ...process.env, ...serviceEnv(cluster.redisUrl, cluster.s3, cluster.prefix) },
    });
    assert.match(run.stdout, new RegExp(`train: ${SYNSETS.length * TRAIN_PER_CLASS} samples in \\d+ shards`));
    assert.match(run.stdout, new RegExp(`val: ${SYNSETS.length * VAL_PER_CLASS} samples`));
    assert.match(run.stderr, /skipped 1 unreadable image.*\n.*n01440764_truncated\.JPEG/);

    const { id } = await cluster.client.submitJob({
      name: 'ilsvrc-mini',
      model: { name: 'resnet8' },
      dataset: { bucket, prefix },
      parallelism: { dataParallel: 2 },
      batchSize: 16,
      epochs: 4,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
      lrSchedule: { type: 'cosine', warmupSteps: 3, scaleWithWorldSize: false },
      augmentation: 'resnet',
      seed: 5,
    });
    const job = await followJob(cluster.client, id, undefined, { timeoutMs: 10 * 60_000 });
    assert.equal(job.state, 'completed', `job ended ${job.state}: ${job.error ?? ''} (logs: ${cluster.logDir})`);
    // 160 training images in 4 shards of 40, 2 per rank: 5 steps of 2 × 16 per epoch.
    assert.equal(Number(job.totalSteps), 4 * Math.floor((SYNSETS.length * TRAIN_PER_CLASS) / 32));
    t.diagnostic(`held-out accuracy ${job.evalAccuracy} after ${job.totalSteps} steps`);
    assert.ok(Number(job.evalAccuracy) > 0.5, `held-out accuracy ${job.evalAccuracy} is not well above chance (0.25)`);

    // Each rank says which decoder its loader used; CI builds libjpeg-turbo and requires it.
    const logs = readdirSync(cluster.logDir).filter((f) => f.startsWith('worker-')).map((f) => readFileSync(join(cluster.logDir, f), 'utf8')).join('\n');
    const decoders = [...logs.matchAll(new RegExp(`job ${id}: rank (\\d) decodes JPEGs with (\\S+)`, 'g'))];
    assert.deepEqual(decoders.map((m) => m[1]).sort(), ['0', '1'], `no decoder line per rank in ${cluster.logDir}`);
    if (process.env.FLEET_REQUIRE_NATIVE_JPEG === '1') assert.ok(decoders.every((m) => m[2] === 'libjpeg-turbo'), decoders.map((m) => m[0]).join('; '));
  });
});
