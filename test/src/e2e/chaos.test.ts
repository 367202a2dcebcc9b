// Chaos with real processes: an elastic data-parallel job (1 to 3 replicas, global batch 12)
// on 3 workers while a seeded plan SIGKILLs two of its workers and once the coordinator, at
// random steps and moments. A supervisor starts a new worker after each worker kill (the run
// grows back) and a new coordinator after the coordinator kill. The job must complete with no
// hang, every step on the samples it would have had and each sample of each epoch once
// (FLEET_SAMPLE_LOG), and with the weights of a replay: the same job without faults, paused
// (POST /jobs/:id/pause atStep) and resumed at the steps where the chaos run changed size, so
// that every step runs at the size it ran at in the chaos (within 1e-5; it is bitwise equal).
// A reference on one size throughout cannot check to 1e-5: a fault-free run on 3 against one
// on 2 sums each step's passes in another order, and by step 72 that float rounding had grown
// to 6e-4 (a single ReLU crossing in step 8 set it off).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectStore } from '@tensorfleet/data';
import { rng } from '@tensorfleet/training';
import { followJob, type LocalCluster } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';
import { idleFleetOf, liveRanks, smallJobSpec, writeSmallDataset } from '../support/small-job';
import { assertSamplesExactlyOnce, sampleHistory, sizeSegments, weightDivergence, worstWeightError } from '../support/training-checks';

const SEED = 20261207;
// 144 samples, global batch 12: 12 steps an epoch, 6 epochs. Long enough that the last planned
// kill still finds the job running on a quiet host, where a step takes about a quarter second
// and the job trains on while the coordinator is down.
const STEPS = 72;
const PER_EPOCH = 12;
const GLOBAL_BATCH = 12;

describe('chaos: random kills of workers and the coordinator', { timeout: 10 * 60_000 }, () => {
  let cluster: LocalCluster;
  const bucket = uniqueBucket('chaos');
  const sampleDir = mkdtempSync(join(tmpdir(), 'chaos-samples-'));
  // The supervisor's pending worker starts: awaited before the cluster stops, or a start due
  // after a failure would outlive the stop and keep the test process alive.
  const supervised: Promise<unknown>[] = [];

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
    checkpoint: { intervalSteps: 2, keep: 40 },
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
    await Promise.allSettled(supervised);
    await cluster?.stop();
  });

  it('ends completed, with the weights of a fault-free replay at the same sizes, each sample of each epoch once', async (t) => {
    await idleFleetOf(cluster, 3);
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
    const plan = kinds.map((kind, i) => ({ kind, step: 4 + i * 22 + Math.floor(rnd() * 8), delayMs: Math.floor(rnd() * 1000), restartAfterMs: (kind === 'worker' ? 6000 : 500) + Math.floor(rnd() * 2000) }));
    const killed: string[] = [];
    const port = Number(new URL(cluster.client.baseUrl).port);
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
        const ranks = await liveRanks(cluster, id);
        assert.ok(ranks.length > 0, `no running worker holds a rank of ${id} at step ${killedAt} (logs: ${cluster.logDir})`);
        const { workerId, proc } = ranks[Math.floor(rnd() * ranks.length)];
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

    const history = sampleHistory(sampleDir, id);
    const segments = sizeSegments(history, STEPS);
    t.diagnostic(`plan ${JSON.stringify(plan)}; run sizes ${JSON.stringify(history.sizes)}; sizes by step ${JSON.stringify(segments)}; ${((Date.now() - t0) / 1000).toFixed(0)} s`);
    assert.ok(history.sizes.some((n) => n < 3), `never ran below 3: ${JSON.stringify(history.sizes)}`);

    // The replay: the same spec, on exactly each segment's number of workers, paused after its last step.
    let ref = '';
    for (const [i, seg] of segments.entries()) {
      await idleFleetOf(cluster, seg.size);
      if (i === 0) ref = (await cluster.client.submitJob(spec('replay'))).id;
      else await cluster.client.jobAction(ref, 'resume');
      if (seg.last === STEPS) break;
      const pausing = await cluster.client.jobAction(ref, 'pause', { atStep: seg.last });
      assert.equal(pausing.pauseAtStep, seg.last);
      const paused = await followJob(cluster.client, ref, undefined, { timeoutMs: 3 * 60_000, intervalMs: 100 });
      assert.equal(paused.state, 'paused', `the replay ended ${paused.state} before step ${seg.last}: ${paused.error ?? ''} (logs: ${cluster.logDir})`);
      assert.equal(paused.step, seg.last, 'the replay paused after the step it was asked to');
    }
    const replayed = await followJob(cluster.client, ref, undefined, { timeoutMs: 4 * 60_000, intervalMs: 250 });
    assert.equal(replayed.state, 'completed', `the replay ended ${replayed.state}: ${replayed.error ?? ''} (logs: ${cluster.logDir})`);
    const replay = sampleHistory(sampleDir, ref);
    // (A missed heartbeat on a loaded host may restart the replay too: harmless while the sizes match.)
    assert.deepEqual(sizeSegments(replay, STEPS), segments, `the replay ran each step at the chaos run's size (its restarts: ${JSON.stringify(replayed.restarts ?? [])})`);

    // The samples first: a step on other samples explains weights that differ.
    assertSamplesExactlyOnce(history, replay, { steps: STEPS, perEpoch: PER_EPOCH, globalBatch: GLOBAL_BATCH, epochSamples: 144 });
    const store = new ObjectStore(cluster.s3);
    const worst = await worstWeightError(store, bucket, replayed.lastCheckpoint!, done.lastCheckpoint!);
    t.diagnostic(`against the replay: worst relative weight error ${worst.toExponential(2)}`);
    if (!(worst < 1e-5)) assert.fail(`worst relative weight error ${worst}: ${await weightDivergence(store, bucket, ref, id)}; restarts ${JSON.stringify(done.restarts)} (logs: ${cluster.logDir})`);
  });
});
