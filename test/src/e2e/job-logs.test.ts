// A job's log lines end to end: two real worker processes write them to the job's Redis
// stream (besides stdout); GET /jobs/:id/logs and `fleet logs --follow` (its own process)
// read them back with their rank, and the stream stays within the workers' FLEET_LOG_MAXLEN.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import Redis from 'ioredis';
import { ControlPlane } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { followJob, serviceEnv, type LocalCluster, type LogLineView } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';

const MAX_LINES = 3;
const NODE_ENTRIES = 1;

describe('job logs, end to end', { timeout: 10 * 60_000 }, () => {
  let cluster: LocalCluster;
  let redis: Redis;
  let control: ControlPlane;
  let nodeEntriesBefore = '100';
  const bucket = uniqueBucket('logs');
  const prefix = 'datasets/synthetic';

  before(async () => {
    cluster = await startTestCluster({ name: 'job-logs', workers: 2, workerEnv: { FLEET_LOG_MAXLEN: String(MAX_LINES) } });
    redis = new Redis(cluster.redisUrl);
    control = new ControlPlane(redis, { prefix: cluster.prefix });
    // Approximate trimming drops whole stream nodes (100 entries by default): small nodes make
    // a short job's few lines exceed the bound, so that trimming shows.
    nodeEntriesBefore = ((await redis.config('GET', 'stream-node-max-entries')) as string[])[1];
    await redis.config('SET', 'stream-node-max-entries', String(NODE_ENTRIES));
    await writeSyntheticDataset(new ObjectStore(cluster.s3), { bucket, prefix, numClasses: 4, imageSize: 32, trainPerClass: 32, valPerClass: 8, samplesPerShard: 32, seed: 4 });
  });

  after(async () => {
    await redis?.config('SET', 'stream-node-max-entries', nodeEntriesBefore).catch(() => undefined);
    redis?.disconnect();
    await cluster?.stop();
  });

  it('the workers\' lines come back with rank through the API and `fleet logs --follow`, within the bound', async () => {
    const { id } = await cluster.client.submitJob({
      name: 'logs', model: { name: 'resnet8' }, dataset: { bucket, prefix }, parallelism: { dataParallel: 2 },
      batchSize: 8, steps: 6, optimizer: { type: 'sgd', lr: 0.05 }, augmentation: 'small',
      checkpoint: { intervalSteps: 1000, keep: 1 }, evaluation: { atEnd: false }, seed: 1,
    });
    // `fleet logs --follow`, a separate process, started while the job is queued or starting.
    const fleet = spawn(process.execPath, [require.resolve('@tensorfleet/cli/bin/fleet.js'), 'logs', id, '--follow', '--json', '--coordinator', cluster.client.baseUrl], {
      env: { ...process.env, ...serviceEnv(cluster.redisUrl, cluster.s3, cluster.prefix) },
    });
    let out = '';
    let err = '';
    fleet.stdout.on('data', (d) => (out += d));
    fleet.stderr.on('data', (d) => (err += d));
    const exited = new Promise<number>((resolve) => fleet.on('exit', (code) => resolve(code ?? 1)));

    const job = await followJob(cluster.client, id, undefined, { timeoutMs: 6 * 60_000 });
    assert.equal(job.state, 'completed', `job ended ${job.state}: ${job.error ?? ''} (logs: ${cluster.logDir})`);
    assert.equal(await exited, 0, `fleet logs --follow failed: ${err}`);

    // What --follow printed: lines of both ranks, in stream order, ending with each rank's last line.
    const followed = out.trim().split('\n').map((l) => JSON.parse(l) as LogLineView);
    assert.deepEqual([...new Set(followed.map((l) => l.rank))].sort(), [0, 1], `ranks in ${out}`);
    assert.deepEqual(followed.map((l) => l.id), [...new Set(followed.map((l) => l.id))].sort(byStreamId), 'each line once, oldest first');
    for (const rank of [0, 1]) {
      assert.match(followed.filter((l) => l.rank === rank).at(-1)!.msg, new RegExp(`job ${id}: completed at step 6`));
    }

    // Each line is one the worker printed on stdout (its log file is the independent record).
    const files = new Map(cluster.workers.map((w) => [`${cluster.prefix}-${w.name}-${process.pid}`, readFileSync(w.logFile, 'utf8')]));
    for (const l of followed) {
      assert.ok(files.get(l.workerId)?.includes(l.msg.split('\n')[0]), `"${l.msg}" (rank ${l.rank}, ${l.workerId}) is not in that worker's stdout`);
      assert.ok(['info', 'warn', 'error', 'debug'].includes(l.level) && l.ts > 0);
    }

    // The API: the kept lines (within the bound), a rank filter, a cursor with nothing after it.
    const page = await cluster.client.logs(id);
    const kept = await redis.xlen(control.keys.logs(id));
    assert.equal(page.lines.length, kept);
    assert.ok(kept <= MAX_LINES + NODE_ENTRIES, `${kept} lines kept, bound ${MAX_LINES} (+ ${NODE_ENTRIES}, one stream node)`);
    // Lines written: at least those of the workers' stdout that name the job (most of a run's do).
    const written = [...files.values()].reduce((n, text) => n + text.split('\n').filter((l) => l.includes(`job ${id}`)).length, 0);
    console.log(`# ${written} lines naming the job on the workers' stdout, ${followed.length} seen by --follow, ${kept} kept (FLEET_LOG_MAXLEN=${MAX_LINES}, stream-node-max-entries ${NODE_ENTRIES})`);
    assert.ok(written > kept, `${written} lines written, ${kept} kept: the bound trimmed the oldest`);
    assert.deepEqual(page.lines.map((l) => l.id), followed.slice(-kept).map((l) => l.id), 'the newest lines are the ones kept');
    const rank1 = await cluster.client.logs(id, { rank: 1 });
    assert.ok(rank1.lines.length > 0 && rank1.lines.every((l) => l.rank === 1));
    assert.deepEqual(await cluster.client.logs(id, { after: page.next }), { lines: [], next: page.next });

    const unknown = await fetch(`${cluster.client.baseUrl}/jobs/no-such-job/logs`);
    assert.equal(unknown.status, 404);
    const bad = await fetch(`${cluster.client.baseUrl}/jobs/${id}/logs?rank=-1&limit=0`);
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /rank.*limit|limit.*rank/);
  });
});

function byStreamId(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am - bm || as - bs;
}
