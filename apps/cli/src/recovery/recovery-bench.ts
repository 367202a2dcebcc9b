import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import type { JobView, MetricView } from '../lib/api-client';
import { LocalCluster } from '../cluster/local-cluster';

/**
 * - sigkill: the worker of rank 1 dies (SIGKILL);
 * - sigstop: it freezes whole (SIGSTOP), heartbeat included: a heartbeat lapse;
 * - stall: it freezes for longer than the collective deadline but shorter than its
 *   heartbeat's lifetime (SIGSTOP, then SIGCONT): a collective TIMEOUT with every worker alive.
 */
export type FaultKind = 'sigkill' | 'sigstop' | 'stall';

export interface RecoveryBenchOptions {
  kinds?: FaultKind[];
  model?: string;
  inputSize?: number;
  batch?: number;
  /** Steps between checkpoints. */
  interval?: number;
  /** The fault comes once the job reports this step. */
  faultAtStep?: number;
  /** Worker heartbeat period and collective deadline for sigkill and sigstop. */
  heartbeatMs?: number;
  collectiveTimeoutMs?: number;
  /** The same for the stall, which needs a deadline shorter than the heartbeat's life. */
  stallHeartbeatMs?: number;
  stallCollectiveTimeoutMs?: number;
  log?: (msg: string) => void;
}

export interface RecoveryBenchRow {
  kind: FaultKind;
  /** Fault → the coordinator's restart (or the job's failure, when it fails instead). */
  detectSeconds: number;
  /** Fault → the first step of the next run. */
  resumeSeconds: number;
  /** How training came back: the gang scheduler's automatic restart, or POST /jobs/:id/resume. */
  resumedBy: 'automatic restart' | 'resume call';
  cause: string;
  lastStepBefore: number;
  fromStep: number;
  /** What the next run started from: a survivor's memory, the checkpoint (or step 0). */
  resumedFrom: string;
  /** The newest checkpoint's step at the fault: what a resume from the checkpoint would have lost to. */
  checkpointStep: number;
  stepsLost: number;
  /** Restarts of the job before the fault (a worker lost by itself on a busy machine). */
  restartsBefore: number;
  stepSeconds: number;
  heartbeatMs: number;
  collectiveTimeoutMs: number;
  /** Extra time of the step after a checkpoint over the median step, per step of the interval, %. */
  checkpointOverheadPct: number;
}

export interface RecoveryBenchResult {
  rows: RecoveryBenchRow[];
  config: { model: string; inputSize: number; batch: number; dataParallel: 2; interval: number; faultAtStep: number; stallMs: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Faults injected into a real 2-worker data-parallel job (coordinator, 3 worker processes of
 * which one is a spare, Redis, the S3 server), each on a fresh job: how long until the
 * coordinator knows, how long until training runs again, and how many steps were thrown away.
 */
export async function runRecoveryBench(o: RecoveryBenchOptions = {}): Promise<RecoveryBenchResult> {
  const kinds = o.kinds ?? ['sigkill', 'sigstop', 'stall'];
  const log = o.log ?? (() => undefined);
  // Lenient deadlines for the losses (a busy machine's first steps are slow); for the stall a
  // deadline it outlasts by a second while its alive key (three periods) cannot expire, even
  // when the last beat came just before the freeze.
  const settings = {
    loss: { heartbeatMs: o.heartbeatMs ?? 2000, collectiveTimeoutMs: o.collectiveTimeoutMs ?? 20_000 },
    stall: { heartbeatMs: o.stallHeartbeatMs ?? 10_000, collectiveTimeoutMs: o.stallCollectiveTimeoutMs ?? 15_000 },
  };
  const stallMs = settings.stall.collectiveTimeoutMs + 1000;
  if (kinds.includes('stall') && stallMs >= 2 * settings.stall.heartbeatMs) {
    throw new Error(`a stall of ${stallMs} ms would also lapse the heartbeat (${settings.stall.heartbeatMs} ms period): raise the stall heartbeat above ${Math.ceil(stallMs / 2)} ms or lower its collective deadline`);
  }
  const config = {
    model: o.model ?? 'resnet8', inputSize: o.inputSize ?? 32, batch: o.batch ?? 16, dataParallel: 2 as const, interval: o.interval ?? 10,
    faultAtStep: o.faultAtStep ?? 25, stallMs,
  };
  const cluster = await LocalCluster.start({ workers: 0, prefix: `tf-bench-recovery-${process.pid}`, log });
  const bucket = `tf-bench-recovery-${process.pid}-${Date.now().toString(36)}`;
  const store = new ObjectStore(cluster.s3);
  const rows: RecoveryBenchRow[] = [];
  try {
    await writeSyntheticDataset(store, { bucket, prefix: 'ds', numClasses: 4, imageSize: config.inputSize, trainPerClass: 64, valPerClass: 0, samplesPerShard: 32, seed: 9 });
    let current: Settings | null = null;
    for (const kind of kinds) {
      const want = kind === 'stall' ? settings.stall : settings.loss;
      if (want !== current) {
        await workersWith(cluster, want, log);
        current = want;
      }
      rows.push({ ...(await oneFault(cluster, bucket, kind, config, want, log)), ...want });
      log(`  ${kind}: detected in ${rows.at(-1)!.detectSeconds.toFixed(1)} s, training again ${rows.at(-1)!.resumeSeconds.toFixed(1)} s after the fault, ${rows.at(-1)!.stepsLost} steps lost`);
    }
  } finally {
    await store.removeAll(bucket).catch(() => undefined);
    await cluster.stop();
  }
  return { rows, config };
}

/** Three fresh worker processes (2 for the job, 1 spare) with these settings, in place of any running. */
async function workersWith(cluster: LocalCluster, s: Settings, log: (m: string) => void): Promise<void> {
  const old = cluster.workers.filter((w) => w.running);
  await Promise.all(old.map((w) => w.stop()));
  // Until their alive keys lapse the stopped ones still look idle, and a job would be given to them.
  const gone = (id: string) => old.some((p) => id.includes(`-${p.name}-`));
  await until('the stopped workers to be listed as lost', async () => !(await cluster.client.listWorkers()).some((w) => w.alive && gone(w.id)), 120_000, 250);
  log(`starting 3 worker processes (2 for the job, 1 spare): heartbeat ${s.heartbeatMs} ms, collective deadline ${s.collectiveTimeoutMs} ms`);
  for (let i = 0; i < 3; i++) cluster.addWorker(workerEnv(s));
  // A start-up allowance for a busy machine.
  await idleWorkers(cluster, 3, 300_000);
}

/** LocalCluster.waitForWorkers refuses once any worker process has exited; here some were killed on purpose. */
async function idleWorkers(cluster: LocalCluster, n: number, timeoutMs: number): Promise<void> {
  await until(`${n} idle workers`, async () => (await cluster.client.listWorkers()).filter((w) => w.alive && w.state === 'idle').length >= n, timeoutMs, 250);
}

type Settings = { heartbeatMs: number; collectiveTimeoutMs: number };
const workerEnv = (s: Settings) => ({ FLEET_HEARTBEAT_MS: String(s.heartbeatMs), FLEET_COLLECTIVE_TIMEOUT_MS: String(s.collectiveTimeoutMs) });

async function oneFault(cluster: LocalCluster, bucket: string, kind: FaultKind, c: RecoveryBenchResult['config'], s: Settings, log: (m: string) => void): Promise<Omit<RecoveryBenchRow, 'heartbeatMs' | 'collectiveTimeoutMs'>> {
  const client = cluster.client;
  const { id } = await client.submitJob({
    name: `recovery-${kind}`, model: { name: c.model, inputSize: c.inputSize }, dataset: { bucket, prefix: 'ds' }, parallelism: { dataParallel: 2 },
    batchSize: c.batch, steps: 100000, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 5e-4 }, augmentation: 'none',
    checkpoint: { intervalSteps: c.interval, keep: 2 }, evaluation: { atEnd: false }, recovery: { maxRestarts: 3 }, seed: 5,
  });
  log(`${kind}: job ${id} submitted; the fault comes at step ${c.faultAtStep}`);
  await until(`job ${id} to reach step ${c.faultAtStep} with a checkpoint`, async () => {
    const j = await client.getJob(id);
    if (j.state === 'failed') throw new Error(`job ${id} failed before the fault: ${j.error} (logs: ${cluster.logDir})`);
    return (j.step ?? 0) >= c.faultAtStep && !!j.lastCheckpoint;
  }, 180_000, 50);
  const workers = await client.listWorkers();
  const victimInfo = workers.find((w) => w.alive && w.jobId === id && Number(w.rank) === 1);
  const victim = victimInfo && cluster.workers.find((p) => victimInfo.id.includes(`-${p.name}-`));
  if (!victimInfo || !victim) throw new Error(`no worker process holds rank 1 of ${id}`);

  // A busy machine can lose a worker on its own (a starved heartbeat): count those, and
  // measure only the restart that follows the fault.
  const atFault = await client.getJob(id);
  const earlier = atFault.restarts?.length ?? 0;
  const checkpointStep = atFault.lastCheckpoint ? Number(/\/(\d+)\/?$/.exec(atFault.lastCheckpoint)?.[1] ?? 0) : 0;
  const faultAt = Date.now();
  victim.kill(kind === 'sigkill' ? 'SIGKILL' : 'SIGSTOP');
  if (kind === 'stall') setTimeout(() => victim.kill('SIGCONT'), c.stallMs);

  let detectedAt: number;
  let resumeFrom: number;
  let fromStep: number;
  let cause: string;
  let resumedBy: RecoveryBenchRow['resumedBy'];
  // Every kind, the stall too, is restarted by the coordinator (a stall: PEER_LOST/TIMEOUT
  // while every member heartbeats); a job that fails instead is resumed, as an operator would.
  const restarted = await waitJob(client, id, (j) => (j.restarts ?? []).length > earlier || j.state === 'failed', 120_000);
  const r = (restarted.restarts ?? [])[earlier];
  if (r) {
    detectedAt = r.at;
    resumeFrom = r.at;
    fromStep = r.fromStep;
    cause = r.cause;
    resumedBy = 'automatic restart';
  } else if (restarted.state === 'failed') {
    detectedAt = restarted.finishedAt ?? Date.now();
    cause = String(restarted.error ?? 'failed').slice(0, 160);
    fromStep = restarted.lastCheckpoint ? Number(/\/(\d+)$/.exec(restarted.lastCheckpoint)?.[1] ?? 0) : 0;
    await until('the faulty worker to come back idle', async () => (await client.listWorkers()).some((w) => w.id === victimInfo.id && w.alive && w.state === 'idle'), 60_000, 200);
    resumeFrom = Date.now();
    await client.jobAction(id, 'resume');
    resumedBy = 'resume call';
  } else {
    throw new Error(`job ${id} was not restarted after ${kind}: ${restarted.state} ${restarted.error ?? ''} (logs: ${cluster.logDir})`);
  }
  const metrics = await trainMetrics(client, id);
  const before = metrics.filter((m) => m.ts <= faultAt);
  let first: MetricView | undefined;
  await until(`job ${id} to train again`, async () => {
    const fresh = await trainMetrics(client, id);
    first = fresh.find((m) => m.ts > resumeFrom);
    return !!first;
  }, 180_000, 100);
  const lastStepBefore = before.at(-1)?.step ?? 0;
  // The restarted run's first report corrects the restart's fromStep (a survivor's memory, or the checkpoint).
  let resumedFrom = resumedBy === 'automatic restart' ? '?' : 'checkpoint';
  if (resumedBy === 'automatic restart') {
    await until(`job ${id}'s restart to say where it resumed from`, async () => {
      const now = (await client.getJob(id)).restarts?.[earlier];
      if (now?.resumedFrom) ({ resumedFrom, fromStep } = { resumedFrom: now.resumedFrom, fromStep: now.fromStep });
      return !!now?.resumedFrom;
    }, 60_000, 100);
  }
  const row = {
    kind, detectSeconds: (detectedAt - faultAt) / 1000, resumeSeconds: (first!.ts - faultAt) / 1000, resumedBy, cause,
    lastStepBefore, fromStep, resumedFrom, checkpointStep, stepsLost: Math.max(0, lastStepBefore - fromStep), restartsBefore: earlier, ...stepFigures(before, c.interval),
  };

  await client.jobAction(id, 'cancel').catch(() => undefined);
  await waitJob(client, id, (j) => j.state !== 'running' && j.state !== 'queued', 60_000);
  if (kind !== 'stall') {
    // The lost worker is replaced, so the next fault finds two workers and a spare again.
    if (kind === 'sigstop') victim.kill('SIGKILL');
    await until('the lost worker to be listed as lost', async () => (await client.listWorkers()).find((w) => w.id === victimInfo.id)?.alive === false, 60_000, 250);
    await client.forgetWorker(victimInfo.id);
    cluster.addWorker(workerEnv(s));
  }
  await idleWorkers(cluster, 3, 300_000);
  return row;
}

/** Median step time and the checkpoint's extra time (the step after it, over the median) per step of the interval. */
function stepFigures(ms: MetricView[], interval: number): { stepSeconds: number; checkpointOverheadPct: number } {
  const byStep = new Map(ms.map((m) => [m.step, m.ts]));
  const plain: number[] = [];
  const afterCheckpoint: number[] = [];
  for (const [step, ts] of byStep) {
    const prev = byStep.get(step - 1);
    if (prev === undefined || step <= 2) continue;
    ((step - 1) % interval === 0 ? afterCheckpoint : plain).push(ts - prev);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
  const m = median(plain);
  const extra = afterCheckpoint.length ? afterCheckpoint.reduce((s, x) => s + x, 0) / afterCheckpoint.length - m : NaN;
  return { stepSeconds: m / 1000, checkpointOverheadPct: (extra / (interval * m)) * 100 };
}

async function trainMetrics(client: LocalCluster['client'], id: string): Promise<MetricView[]> {
  const out: MetricView[] = [];
  let from = '-';
  for (;;) {
    const page = await client.metrics(id, from);
    out.push(...page.entries.filter((m) => m.kind === 'train' && m.rank === 0));
    if (!page.entries.length || page.next === from) return out;
    from = page.next;
  }
}

async function waitJob(client: LocalCluster['client'], id: string, done: (j: JobView) => boolean, timeoutMs: number): Promise<JobView> {
  let job: JobView | undefined;
  await until(`job ${id}`, async () => done((job = await client.getJob(id))), timeoutMs, 50);
  return job!;
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function formatRecoveryBench(r: RecoveryBenchResult): string {
  const head = ['fault', 'heartbeat/deadline', 'detect s', 'training again s', 'resumed by', 'resumed from', 'steps lost', 'lost from ckpt', 'step s', 'ckpt overhead/step', 'earlier restarts', 'cause'];
  const body = r.rows.map((x) => [
    x.kind, `${x.heartbeatMs / 1000} s/${x.collectiveTimeoutMs / 1000} s`, x.detectSeconds.toFixed(1), x.resumeSeconds.toFixed(1), x.resumedBy, x.resumedFrom, `${x.stepsLost} (${x.lastStepBefore}→${x.fromStep})`,
    String(Math.max(0, x.lastStepBefore - x.checkpointStep)),
    x.stepSeconds.toFixed(3), Number.isFinite(x.checkpointOverheadPct) ? `${x.checkpointOverheadPct.toFixed(1)}%` : '-', String(x.restartsBefore), x.cause.slice(0, 70),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ');
  const c = r.config;
  return [line(head), ...body.map(line), '',
    `${c.model} ${c.inputSize}px batch ${c.batch} ×2 workers (+1 spare), checkpoint every ${c.interval} steps, fault at step ${c.faultAtStep}; ` +
    `a heartbeat key lives 3 periods; the stall freezes the worker ${c.stallMs / 1000} s; ` +
    "'lost from ckpt': the steps a resume from the newest checkpoint would have thrown away"].join('\n');
}
