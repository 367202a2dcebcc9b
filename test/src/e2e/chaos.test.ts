// Chaos with real processes: an elastic data-parallel job (1 to 3 replicas, global batch 12)
// on 3 workers while a seeded plan SIGKILLs two of its workers and once the coordinator, at
// random steps and moments. A supervisor starts a new worker after each worker kill (the run
// grows back) and a new coordinator after the coordinator kill. The job must complete with no
// hang, with the weights of the same job run on 2 workers without interruption (within 1e-5),
// every step on that run's samples and each sample of each epoch once (FLEET_SAMPLE_LOG).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectStore } from '@tensorfleet/data';
import { rng } from '@tensorfleet/training';
import { followJob, type LocalCluster } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';
import { processOfRank, smallJobSpec, writeSmallDataset } from '../support/small-job';
import { assertSamplesExactlyOnce, sampleHistory, worstWeightError } from '../support/training-checks';

const SEED = 20261207;
// 144 samples, global batch 12: 12 steps an epoch, 3 epochs.
const STEPS = 36;
const PER_EPOCH = 12;
const GLOBAL_BATCH = 12;

describe('chaos: random kills of workers and the coordinator', { timeout: 10 * 60_000 }, () => {
  let cluster: LocalCluster;
  const bucket = uniqueBucket('chaos');
  const sampleDir = mkdtempSync(join(tmpdir(), 'chaos-samples-'));

  const spec = (name: string) => smallJobSpec(bucket, {
    name,
    parallelism: { dataParallel: 2 },
    recovery: { maxRestarts: 6, minDataParallel: 1, maxDataParallel: 3 },
    batchSize: GLOBAL_BATCH / 2,
    // Passes of 2 at every size (shares 12, 6, 4): each pass sums the same samples whatever the
    // world size, so only the order of summing the passes differs. With whole shares (passes
    // of 6 and of 4) the weights drifted 5e-5 apart over 48 steps.
    microBatchSize: 2,
    steps: STEPS,
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 },
    lrSchedule: { type: 'cosine', warmupSteps: 4 },
    // Per-replica batch-norm statistics depend on how the batch is split; frozen BN does not.
    freezeBatchNorm: true,
    checkpoint: { intervalSteps: 2, keep: 30 },
    seed: 5,
  });

  before(async () => {
    cluster = await startTestCluster({
      name: 'chaos', workers: 2,
      coordinatorEnv: { FLEET_LOCK_DURATION_MS: '2000', FLEET_FOLLOW_POLL_MS: '200' },
      // A heartbeat TTL of 3 s: 1.5 s (500 ms beats) is shorter than a new worker's first step on a loaded host.
      workerEnv: { FLEET_COLLECTIVE_TIMEOUT_MS: '8000', FLEET_HEARTBEAT_MS: '1000', FLEET_SAMPLE_LOG: sampleDir },
    });
    await writeSmallDataset(cluster.s3, bucket, { trainPerClass: 36, samplesPerShard: 16, seed: 9 });
  });

  after(async () => {
    await cluster?.stop();
  });

  it('ends completed, with the uninterrupted run\'s weights and each sample of each epoch once', async (t) => {
    // The reference: two workers only, so it runs on 2 from start to end.
    const straight = await cluster.client.submitJob(spec('straight'));
    const s = await followJob(cluster.client, straight.id, undefined, { timeoutMs: 4 * 60_000 });
    assert.equal(s.state, 'completed', `uninterrupted job ended ${s.state}: ${s.error ?? ''} (logs: ${cluster.logDir})`);
    assert.deepEqual(sampleHistory(sampleDir, straight.id).sizes, [2]);

    cluster.addWorker();
    await cluster.waitForWorkers(3);
    const t0 = Date.now();
    const { id } = await cluster.client.submitJob(spec('chaos'));

    // The plan: two worker kills and one coordinator kill in a seeded order, each at a seeded
    // step of its third of the run and a seeded moment within that step.
    const rnd = rng(SEED); // mulberry32: a failing plan can be run again as it was
    const kinds: ('worker' | 'coordinator')[] = ['worker', 'worker', 'coordinator'];
    for (let i = kinds.length - 1; i > 0; i--) {
      const k = Math.floor(rnd() * (i + 1));
      [kinds[i], kinds[k]] = [kinds[k], kinds[i]];
    }
    const plan = kinds.map((kind, i) => ({ kind, step: 4 + i * 10 + Math.floor(rnd() * 6), delayMs: Math.floor(rnd() * 1000), restartAfterMs: (kind === 'worker' ? 6000 : 500) + Math.floor(rnd() * 2000) }));
    const killed: string[] = [];
    const port = Number(new URL(cluster.client.baseUrl).port);
    const supervised: Promise<unknown>[] = [];
    for (const k of plan) {
      const at = await followJob(cluster.client, id, undefined, { until: (j) => j.state === 'running' && (j.step ?? 0) >= k.step, intervalMs: 100, timeoutMs: 3 * 60_000 });
      assert.equal(at.state, 'running', `before the ${k.kind} kill at step ${k.step} the job is ${at.state}: ${at.error ?? ''} (logs: ${cluster.logDir})`);
      await new Promise((r) => setTimeout(r, k.delayMs));
      const killedAt = (await cluster.client.getJob(id)).step;
      if (k.kind === 'coordinator') {
        const proc = cluster.coordinator;
        proc.kill('SIGKILL');
        await proc.exited;
        // The supervisor starts a new one on the same port.
        await new Promise((r) => setTimeout(r, k.restartAfterMs));
        await cluster.addCoordinator({ port });
      } else {
        const members = (await cluster.client.getJob(id)).members ?? [];
        const rank = members[Math.floor(rnd() * members.length)]?.rank ?? 0;
        const { workerId, proc } = await processOfRank(cluster, id, rank);
        proc.kill('SIGKILL');
        killed.push(workerId);
        // The supervisor starts a worker again (in the background, as it would), seconds later
        // (RestartSec): one back within a second is claimed by the restart itself, which then
        // never runs below 3 (the memory resume restarts within a few seconds).
        supervised.push(new Promise((r) => setTimeout(r, k.restartAfterMs)).then(() => cluster.addWorker()));
      }
      t.diagnostic(`killed the ${k.kind}${k.kind === 'worker' ? ` ${killed.at(-1)}` : ''} at step ${killedAt} (planned ${k.step})`);
    }
    await Promise.all(supervised);
    assert.equal(new Set(killed).size, 2, `two workers killed: ${killed.join(', ')}`);

    const done = await followJob(cluster.client, id, undefined, { timeoutMs: 4 * 60_000, intervalMs: 250 });
    assert.equal(done.state, 'completed', `the chaos job ended ${done.state}: ${done.error ?? ''} (logs: ${cluster.logDir})`);
    assert.equal(done.step, STEPS);
    // Each worker kill costs an automatic restart blamed on it; the coordinator kill none. (On a
    // loaded host a worker may also miss its heartbeats once: an extra restart, not a failure.)
    const blamed = (done.restarts ?? []).map((r) => r.worker);
    t.diagnostic(`restarts: ${JSON.stringify((done.restarts ?? []).map((r) => ({ worker: r.worker, cause: r.cause, fromStep: r.fromStep, lostSteps: r.lostSteps })))}`);
    for (const w of killed) assert.ok(blamed.includes(w), `no restart blamed on the killed ${w}: ${JSON.stringify(done.restarts)}`);

    const worst = await worstWeightError(new ObjectStore(cluster.s3), bucket, s.lastCheckpoint!, done.lastCheckpoint!);
    const history = sampleHistory(sampleDir, id);
    t.diagnostic(`plan ${JSON.stringify(plan)}; run sizes ${JSON.stringify(history.sizes)}; ${((Date.now() - t0) / 1000).toFixed(0)} s; worst relative weight error ${worst.toExponential(2)}`);
    assert.ok(worst < 1e-5, `worst relative weight error ${worst}`);
    assert.ok(history.sizes.some((n) => n < 3), `never ran below 3: ${JSON.stringify(history.sizes)}`);
    assertSamplesExactlyOnce(history, sampleHistory(sampleDir, straight.id), { steps: STEPS, perEpoch: PER_EPOCH, globalBatch: GLOBAL_BATCH, epochSamples: 144 });
  });
});
