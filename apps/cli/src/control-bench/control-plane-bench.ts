import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { ControlPlane, TERMINAL_JOB_STATES, applyJobSpecDefaults, worldSizeOf, type JobSpecInput, type JobState } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { LocalCluster } from '../cluster/local-cluster';
import { commandStats, processStats, redisInfo } from './process-stats';
import { percentile, SchedulabilityTracker } from './schedulability';
import { SimulatedFleet } from './simulated-fleet';

export interface ControlPlaneBenchOptions {
  /** Simulated workers at the start. Default 1000. */
  workers?: number;
  /** Jobs submitted during the run. Default 300. */
  jobs?: number;
  /** Finished jobs written to Redis before the run (the history GET /jobs and /metrics face). Default 10000. */
  history?: number;
  /** Seconds over which the jobs are submitted. Default 60. */
  submitSec?: number;
  /** A random busy worker is killed, and a new one joins, this often (ms); 0 = never. Default 3000. */
  churnMs?: number;
  /** Simulated step time. Default 250 ms. */
  stepMs?: number;
  /** Inbox-reading connections of the simulated fleet. Default 16. */
  inboxConnections?: number;
  /**
   * Under load, time only the endpoints that page through an index (not /metrics and
   * ?state=, which read the whole history on this branch), so that their cost does not
   * show up in the scheduling figures. Default false. All are timed when idle either way.
   */
  lightSampling?: boolean;
  /** Give up waiting for the jobs to end after this long past the last submission. Default 120 s. */
  drainSec?: number;
  log?: (msg: string) => void;
}

export interface LatencyRow { endpoint: string; phase: 'under load' | 'idle'; samples: number; p50Ms: number; p99Ms: number; maxMs: number; bytes: number }

export interface ControlPlaneBenchResult {
  workers: number; jobs: number; history: number; submitSec: number; churnMs: number; lightSampling: boolean;
  /** Jobs actually submitted: submission stops at 3 × submitSec even if POST /jobs is slower than the plan. */
  submitted: number;
  /** Jobs whose latency counts (first runs), and the percentiles of it (ms). */
  scheduled: number; scheduleP50Ms: number; scheduleP99Ms: number; scheduleMaxMs: number; scheduledEarly: number;
  /** Submission (POST /jobs answered) to first assignment, every counted job, ms. */
  queueWaitP50Ms: number; queueWaitP99Ms: number;
  outcomes: Record<string, number>; restarts: number; killed: number; joined: number;
  loadSec: number; redisCommandsPerSec: number; redisTopCommands: { command: string; callsPerSec: number; usecPerCall: number; cpuShare: number }[];
  redisMemory: { empty: number; afterHistory: number; peakDuringLoad: number; end: number; perHistoryJobBytes: number };
  redisCpuSecPerSec: number;
  coordinator: { cpuSecPerSec: number; rssPeakBytes: number; rssEndBytes: number };
  api: LatencyRow[];
  simErrors: string[];
  /** Event-loop lag of the bench process itself (it hosts the fleet), p99 ms: latencies include it. */
  benchLoopLagP99Ms: number;
}

const SIZES = [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 16, 32, 64];
const PRIORITIES = [0, 0, 0, 0, 10, 50];

/**
 * The control plane under a thousand workers: a private Redis and S3, a real coordinator
 * process, a SimulatedFleet in this process, `history` finished jobs in Redis, then a stream
 * of jobs of mixed sizes and priorities while workers die and join. Times scheduling
 * (SchedulabilityTracker), samples Redis and the coordinator's CPU and memory, and the API.
 */
export async function runControlPlaneBench(opts: ControlPlaneBenchOptions = {}): Promise<ControlPlaneBenchResult> {
  const o = { workers: 1000, jobs: 300, history: 10_000, submitSec: 60, churnMs: 3000, stepMs: 250, inboxConnections: 16, drainSec: 120, lightSampling: false, ...opts };
  const log = o.log ?? (() => undefined);
  for (const k of ['workers', 'jobs', 'submitSec', 'stepMs', 'inboxConnections'] as const) {
    if (!(Number.isFinite(o[k]) && o[k] >= 1)) throw new Error(`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} must be at least 1, got ${o[k]}`);
  }
  if (!(o.history >= 0) || !(o.churnMs >= 0)) throw new Error('--history and --churn-ms must be >= 0');
  const cluster = await LocalCluster.start({
    workers: 0, prefix: 'tfcp', privateServices: true, log,
    // Every submitted job gets a scheduler slot; lost workers leave the registry after 30 s.
    coordinatorEnv: { FLEET_CONCURRENCY: String(Math.max(64, o.jobs + 16)), FLEET_FORGET_LOST_AFTER_MS: '30000' },
  });
  const redis = new Redis(cluster.redisUrl);
  const control = new ControlPlane(redis, { prefix: cluster.prefix });
  const base = cluster.client.baseUrl;
  let fleet: SimulatedFleet | undefined;
  const lag = startLagProbe();
  try {
    const mem0 = Number((await redisInfo(redis, 'memory')).used_memory);
    const bucket = `tfcp-bench-${Date.now().toString(36)}`;
    const store = new ObjectStore(cluster.s3);
    log('writing a small synthetic dataset (the coordinator checks its manifest on submission)');
    await writeSyntheticDataset(store, { bucket, prefix: 'd', numClasses: 4, imageSize: 8, trainPerClass: 256, valPerClass: 4, samplesPerShard: 1024, seed: 1 });
    const spec = (size: number, priority: number, steps: number): JobSpecInput => ({
      name: `cp-${size}`, model: { name: 'resnet8' }, dataset: { bucket, prefix: 'd' }, parallelism: { dataParallel: size },
      batchSize: 8, steps, priority, optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 }, augmentation: 'small', seed: 1,
    });

    log(`writing ${o.history} finished jobs of history`);
    const histSpec = applyJobSpecDefaults(spec(2, 0, 100));
    const t0 = Date.now() - o.history * 1000;
    for (let i = 0; i < o.history; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, o.history - i) }, async (_, k) => {
        const job = await control.createJob(histSpec, { now: t0 + (i + k) * 1000, totalSteps: 100 });
        await control.transitionJob(job.id, ['queued'], { state: 'completed', step: 100, finishedAt: t0 + (i + k) * 1000 + 500 });
      }));
    }
    const memHistory = Number((await redisInfo(redis, 'memory')).used_memory);

    // ---- the fleet and the tracker ----
    const tracker = new SchedulabilityTracker(() => fleet!.alive().filter((w) => w.idle).length, () => fleet!.alive().length);
    const firstRun = new Set<string>();
    const submittedAt = new Map<string, number>();
    const queueWaits: number[] = [];
    const assignedRuns = new Set<string>();
    const assignedJobs = new Set<string>();
    fleet = new SimulatedFleet({
      redisUrl: cluster.redisUrl, prefix: cluster.prefix, stepMs: o.stepMs, inboxConnections: o.inboxConnections,
      onAssign: (_id, a, at) => {
        if (assignedRuns.has(a.runId)) return;
        assignedRuns.add(a.runId);
        assignedJobs.add(a.jobId);
        const sub = submittedAt.get(a.jobId);
        if (sub !== undefined && firstRun.has(a.jobId)) queueWaits.push(at - sub);
        firstRun.delete(a.jobId);
        tracker.assigned(a.jobId, at);
      },
      onIdle: (_id, at) => tracker.update(at),
    });
    const f = fleet;
    log(`registering ${o.workers} simulated workers`);
    await fleet.join(o.workers);

    // ---- load ----
    const api: Record<string, number[]> = {};
    const apiBytes: Record<string, number> = {};
    const timeGet = async (name: string, path: string) => {
      const t = performance.now();
      const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(60_000) });
      const body = await res.arrayBuffer();
      if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status} ${Buffer.from(body).toString().slice(0, 200)}`);
      (api[name] ??= []).push(performance.now() - t);
      apiBytes[name] = body.byteLength;
    };
    const endpoints: [string, string][] = [
      ['GET /jobs?limit=50', '/jobs?limit=50'],
      ['GET /jobs?limit=50&offset=5000', '/jobs?limit=50&offset=5000'],
      ['GET /jobs?state=running', '/jobs?state=running&limit=50'],
      ['GET /workers?limit=100', '/workers?limit=100'],
      ['GET /metrics', '/metrics'],
    ];
    const coordPid = cluster.coordinator.child.pid!;
    const redisPid = Number((await redisInfo(redis, 'server')).process_id);
    const cs0 = await commandStats(redis);
    const stats0 = { coord: processStats(coordPid), redis: processStats(redisPid), cmds: Number((await redisInfo(redis, 'stats')).total_commands_processed), t: performance.now() };
    let rssPeak = 0;
    let memPeak = 0;
    let killed = 0;
    let joined = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        rssPeak = Math.max(rssPeak, processStats(coordPid).rssBytes);
        memPeak = Math.max(memPeak, Number((await redisInfo(redis, 'memory')).used_memory));
        for (const [name, path] of endpoints) {
          if (o.lightSampling && (path.includes('state=') || path === '/metrics')) continue;
          await timeGet(`${name}|load`, path).catch((e) => f.errors.push(String(e)));
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const churn = o.churnMs > 0 ? setInterval(() => {
      const busy = f.alive().filter((w) => w.current);
      if (busy.length) { f.kill(busy[Math.floor(Math.random() * busy.length)].id); killed++; }
      void f.join(1).then(() => joined++);
      tracker.update(Date.now());
    }, o.churnMs) : undefined;

    log(`submitting ${o.jobs} jobs over ${o.submitSec} s (sizes ${[...new Set(SIZES)].join('/')}, priorities ${[...new Set(PRIORITIES)].join('/')}), killing and adding a worker every ${o.churnMs} ms`);
    const ids: string[] = [];
    const loadStart = performance.now();
    for (let i = 0; i < o.jobs; i++) {
      if (performance.now() - loadStart > 3 * o.submitSec * 1000) {
        log(`  submission stopped after ${i} jobs: POST /jobs is too slow to keep to ${o.submitSec} s`);
        break;
      }
      const due = loadStart + (i * o.submitSec * 1000) / o.jobs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const size = SIZES[i % SIZES.length];
      const priority = PRIORITIES[(i * 7) % PRIORITIES.length];
      const steps = 10 + ((i * 13) % 40);
      const tPost = performance.now();
      const res = await fetch(`${base}/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(spec(size, priority, steps)), signal: AbortSignal.timeout(60_000) });
      const body = await res.json() as { id?: string; createdAt?: number; message?: unknown };
      if (!res.ok || !body.id) throw new Error(`POST /jobs: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
      (api['POST /jobs|load'] ??= []).push(performance.now() - tPost);
      apiBytes['POST /jobs|load'] = 0;
      const now = Date.now();
      ids.push(body.id);
      submittedAt.set(body.id, now);
      // An assignment may already have arrived before the answer: then it is not waiting.
      if (!assignedJobs.has(body.id)) {
        firstRun.add(body.id);
        tracker.add({ id: body.id, size, priority, createdAt: body.createdAt ?? now, counted: true }, now);
      }
      if ((i + 1) % 50 === 0) log(`  ${i + 1}/${o.jobs} submitted, ${tracker.latencies.length} scheduled, ${f.alive().filter((w) => w.current).length} workers busy`);
    }
    log('all submitted; waiting for the jobs to end');
    const deadline = Date.now() + o.drainSec * 1000;
    let states: Record<string, number> = {};
    let restarts = 0;
    for (;;) {
      const jobs = await Promise.all(ids.map((id) => control.getJob(id)));
      states = {};
      restarts = 0;
      for (const j of jobs) {
        const s: JobState | 'gone' = j?.state ?? 'gone';
        states[s] = (states[s] ?? 0) + 1;
        restarts += j?.restarts?.length ?? 0;
        // A restarted run waits again; the tracker follows it (uncounted) so others' latencies stay right.
        if (j && j.state === 'queued' && !tracker.waiting.has(j.id) && (j.restarts?.length ?? 0) > 0) {
          tracker.add({ id: j.id, size: worldSizeOf(j.spec), priority: j.spec.priority, createdAt: j.createdAt, counted: false }, Date.now());
        }
      }
      const active = jobs.filter((j) => j && !TERMINAL_JOB_STATES.includes(j.state)).length;
      if (!active || Date.now() > deadline) break;
      log(`  ${active} jobs still active (${Object.entries(states).map(([k, v]) => `${v} ${k}`).join(', ')})`);
      await new Promise((r) => setTimeout(r, 3000));
    }
    if (churn) clearInterval(churn);
    sampling = false;
    await sampler;
    const loadSec = (performance.now() - stats0.t) / 1000;
    const stats1 = { coord: processStats(coordPid), redis: processStats(redisPid), cmds: Number((await redisInfo(redis, 'stats')).total_commands_processed) };
    const cs1 = await commandStats(redis);

    log('timing the API with the cluster idle');
    for (let i = 0; i < 20; i++) for (const [name, path] of endpoints) await timeGet(`${name}|idle`, path).catch((e) => fleet!.errors.push(String(e)));
    const memEnd = Number((await redisInfo(redis, 'memory')).used_memory);

    const usecTotal = Object.keys(cs1).reduce((s, k) => s + cs1[k].usec - (cs0[k]?.usec ?? 0), 0);
    const top = Object.keys(cs1).map((k) => ({ command: k, calls: cs1[k].calls - (cs0[k]?.calls ?? 0), usec: cs1[k].usec - (cs0[k]?.usec ?? 0) }))
      .filter((c) => c.calls > 0).sort((a, b) => b.usec - a.usec).slice(0, 8)
      .map((c) => ({ command: c.command, callsPerSec: c.calls / loadSec, usecPerCall: c.usec / c.calls, cpuShare: usecTotal ? c.usec / usecTotal : 0 }));
    const apiRows: LatencyRow[] = Object.entries(api).map(([k, xs]) => {
      const [endpoint, phase] = k.split('|');
      return { endpoint, phase: phase === 'load' ? 'under load' : 'idle', samples: xs.length, p50Ms: percentile(xs, 50), p99Ms: percentile(xs, 99), maxMs: Math.max(...xs), bytes: apiBytes[k] };
    });
    return {
      workers: o.workers, jobs: o.jobs, history: o.history, submitSec: o.submitSec, churnMs: o.churnMs, lightSampling: o.lightSampling, submitted: ids.length,
      scheduled: tracker.latencies.length, scheduleP50Ms: percentile(tracker.latencies, 50), scheduleP99Ms: percentile(tracker.latencies, 99),
      scheduleMaxMs: Math.max(...tracker.latencies), scheduledEarly: tracker.early,
      queueWaitP50Ms: percentile(queueWaits, 50), queueWaitP99Ms: percentile(queueWaits, 99),
      outcomes: states, restarts, killed, joined, loadSec,
      redisCommandsPerSec: (stats1.cmds - stats0.cmds) / loadSec, redisTopCommands: top,
      redisMemory: { empty: mem0, afterHistory: memHistory, peakDuringLoad: memPeak, end: memEnd, perHistoryJobBytes: o.history ? (memHistory - mem0) / o.history : 0 },
      redisCpuSecPerSec: (stats1.redis.cpuSec - stats0.redis.cpuSec) / loadSec,
      coordinator: { cpuSecPerSec: (stats1.coord.cpuSec - stats0.coord.cpuSec) / loadSec, rssPeakBytes: rssPeak, rssEndBytes: processStats(coordPid).rssBytes },
      api: apiRows, simErrors: fleet.errors.slice(0, 10), benchLoopLagP99Ms: lag.p99(),
    };
  } finally {
    lag.stop();
    await fleet?.close().catch(() => undefined);
    redis.disconnect();
    await cluster.stop();
  }
}

/** Event-loop lag of this process, sampled every 50 ms. */
function startLagProbe(): { p99: () => number; stop: () => void } {
  const lags: number[] = [];
  let last = performance.now();
  const t = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - 50));
    last = now;
  }, 50);
  return { p99: () => percentile(lags, 99), stop: () => clearInterval(t) };
}

export function formatControlPlaneBench(r: ControlPlaneBenchResult): string {
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(v < 10 ? 1 : 0) : '-');
  const mb = (v: number) => (v / 2 ** 20).toFixed(1);
  const lines = [
    `control plane: ${r.workers} simulated workers, ${r.submitted} of ${r.jobs} jobs submitted over ${r.submitSec} s, ${r.history} jobs of history, churn every ${r.churnMs} ms (${r.killed} killed, ${r.joined} joined)${r.lightSampling ? '; under load only the paged endpoints are timed' : ''}`,
    '',
    `scheduling (schedulable -> first assignment)  p50 ${ms(r.scheduleP50Ms)} ms   p99 ${ms(r.scheduleP99Ms)} ms   max ${ms(r.scheduleMaxMs)} ms   (${r.scheduled} jobs${r.scheduledEarly ? `, ${r.scheduledEarly} before the tracker saw them schedulable` : ''})`,
    `queue wait (submitted -> first assignment)    p50 ${ms(r.queueWaitP50Ms)} ms   p99 ${ms(r.queueWaitP99Ms)} ms`,
    `outcomes: ${Object.entries(r.outcomes).map(([k, v]) => `${v} ${k}`).join(', ')}; ${r.restarts} automatic restarts`,
    `redis: ${r.redisCommandsPerSec.toFixed(0)} commands/s, ${(r.redisCpuSecPerSec * 100).toFixed(0)}% of a core; memory ${mb(r.redisMemory.empty)} MB empty, ${mb(r.redisMemory.afterHistory)} MB with history (${(r.redisMemory.perHistoryJobBytes / 1024).toFixed(1)} KB/job), peak ${mb(r.redisMemory.peakDuringLoad)} MB, end ${mb(r.redisMemory.end)} MB`,
    `coordinator: ${(r.coordinator.cpuSecPerSec * 100).toFixed(0)}% of a core, RSS peak ${mb(r.coordinator.rssPeakBytes)} MB, end ${mb(r.coordinator.rssEndBytes)} MB`,
    `bench process event-loop lag p99 ${ms(r.benchLoopLagP99Ms)} ms (included in the latencies above)`,
    '',
    'redis command         calls/s   us/call   share of redis time',
    ...r.redisTopCommands.map((c) => `${c.command.padEnd(20)} ${c.callsPerSec.toFixed(0).padStart(8)} ${c.usecPerCall.toFixed(1).padStart(9)}   ${(c.cpuShare * 100).toFixed(0)}%`),
    '',
    'endpoint                           phase        n     p50 ms   p99 ms   max ms   bytes',
    ...r.api.map((a) => `${a.endpoint.padEnd(34)} ${a.phase.padEnd(11)} ${String(a.samples).padStart(4)} ${ms(a.p50Ms).padStart(9)} ${ms(a.p99Ms).padStart(8)} ${ms(a.maxMs).padStart(8)} ${String(a.bytes).padStart(8)}`),
  ];
  if (r.simErrors.length) lines.push('', `simulated fleet errors (first ${r.simErrors.length}):`, ...r.simErrors.map((e) => `  ${e}`));
  return lines.join('\n');
}
