// /metrics against a real Redis and Swift S3: values, the read token, the Redis work per
// scrape with 10 and with 10,000 finished jobs, the state-set migration, and the Grafana file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ControlPlane, JOB_STATES, parseJobSpec, type JobSpec } from '@tensorfleet/control';
import { testId, testServices, type Services } from '@tensorfleet/infra';
import { startCoordinator, type RunningCoordinator } from '../bootstrap';
import type { SchedulerService } from '../scheduler/scheduler.service';
import { MetricsService } from './metrics.service';

const READ = 'metrics-read-token-0123456789';
const WRITE = 'metrics-write-token-0123456789';
const GRAFANA = join(__dirname, '..', '..', '..', '..', 'infra', 'grafana', 'tensorfleet.json');

/** `name{labels}` → value, from Prometheus' text format (an independent parser: no prom-client). */
function parseExposition(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1], type[2]);
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
    assert.ok(m, `not an exposition line: ${line}`);
    const labels = m[2] ? [...m[2].slice(1, -1).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => `${k}="${v}"`).sort().join(',') : '';
    samples.set(labels ? `${m[1]}{${labels}}` : m[1], Number(m[3]));
  }
  return { samples, types };
}

const spec = (name: string): JobSpec => {
  const r = parseJobSpec({ name, model: { name: 'resnet8' }, dataset: { bucket: 'bkt', prefix: 'p' }, parallelism: { dataParallel: 2 }, batchSize: 8, steps: 100, optimizer: { type: 'sgd', lr: 0.1 } });
  assert.ok(r.spec, JSON.stringify(r.errors));
  return r.spec;
};

describe('/metrics', () => {
  let services: Services;
  let coord: RunningCoordinator;
  let redis: Redis;
  let control: ControlPlane;
  const prefix = testId('metrics');
  const scrape = async (token = READ) => {
    const res = await fetch(`${coord.url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
  };

  /** `n` finished jobs, created in pipelined batches (createJob then a transition, as the scheduler does). */
  async function finishedJobs(n: number, from: number): Promise<void> {
    const s = spec('history');
    for (let i = 0; i < n; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, n - i) }, async (_, k) => {
        const id = `done-${from + i + k}`;
        await control.createJob(s, { id, now: 1000 + from + i + k, totalSteps: 100 });
        await control.transitionJob(id, ['queued'], { state: (i + k) % 10 === 0 ? 'failed' : 'completed', step: 100, finishedAt: 5000 });
      }));
    }
  }

  before(async () => {
    services = await testServices();
    redis = new Redis(services.redisUrl);
    control = new ControlPlane(redis, { prefix });
    coord = await startCoordinator({
      port: 0, host: '127.0.0.1', redisUrl: services.redisUrl, s3: services.s3, prefix, quiet: true,
      apiTokens: [{ token: WRITE, access: 'write' }, { token: READ, access: 'read' }],
    });
    // An active job no worker can take (4 ranks, 2 workers), paused and running ones set by hand.
    await control.createJob(spec('waits'), { id: 'q1', now: 10, totalSteps: 100 });
    await control.createJob(spec('trains'), { id: 'r1', now: 11, totalSteps: 200 });
    await control.transitionJob('r1', ['queued'], {
      state: 'running', step: 42, loss: 1.25, imagesPerSec: 640, stepsPerSec: 40,
      restarts: [{ at: 1, cause: 'stopped heartbeating', worker: 'w9', fromStep: 10, lostSteps: 3 }],
    });
    await control.appendEvent('r1', { type: 'checkpoint', rank: 0, step: 40, checkpointKey: 'checkpoints/r1/40' });
    await control.createJob(spec('rests'), { id: 'p1', now: 12, totalSteps: 100 });
    await control.transitionJob('p1', ['queued'], { state: 'paused', step: 7, imagesPerSec: 99 });
    await control.registerWorker({ id: 'w1', host: 'h1', pid: 1, backend: 'onednn', device: 'cpu', address: { hostId: 'h1', tcp: 'tcp://127.0.0.1:1', ipc: null } }, { busy: { jobId: 'r1', rank: 0 } });
    await control.registerWorker({ id: 'w2', host: 'h2', pid: 2, backend: 'wasm', device: 'cpu', address: { hostId: 'h2', tcp: 'tcp://127.0.0.1:2', ipc: null } }, { ttlMs: 1 });
    await finishedJobs(10, 0);
  });

  after(async () => {
    await coord?.close();
    const keys = await redis.keys(`${prefix}*`);
    for (let i = 0; i < keys.length; i += 1000) await redis.del(...keys.slice(i, i + 1000));
    redis?.disconnect();
    await services?.stop();
  });

  test('needs a token like every read: 401 without, 200 with the read-only one', async () => {
    const none = await scrape('');
    assert.equal(none.status, 401);
    const ok = await scrape(READ);
    assert.equal(ok.status, 200);
    assert.match(ok.type ?? '', /^text\/plain;.*version=0\.0\.4/);
  });

  test('counts, per-job and per-worker values are those in Redis; finished jobs have no series', async () => {
    await new Promise((r) => setTimeout(r, 20)); // w2's 1 ms heartbeat has expired
    const { samples, types } = parseExposition((await scrape()).text);
    const v = (k: string) => samples.get(k);
    assert.equal(types.get('tensorfleet_jobs'), 'gauge');
    assert.deepEqual(JOB_STATES.map((s) => v(`tensorfleet_jobs{state="${s}"}`)), [1, 0, 1, 1, 9, 1, 0]);
    assert.equal(v('tensorfleet_job_step{job="r1"}'), 42);
    assert.equal(v('tensorfleet_job_total_steps{job="r1"}'), 200);
    assert.equal(v('tensorfleet_job_loss{job="r1"}'), 1.25);
    assert.equal(v('tensorfleet_job_images_per_second{job="r1"}'), 640);
    assert.equal(v('tensorfleet_job_steps_per_second{job="r1"}'), 40);
    assert.equal(v('tensorfleet_job_restarts{job="r1"}'), 1);
    const age = v('tensorfleet_job_checkpoint_age_seconds{job="r1"}');
    assert.ok(age !== undefined && age >= 0 && age < 60, `checkpoint age ${age}`);
    assert.equal(v('tensorfleet_job_info{job="r1",model="resnet8",name="trains",state="running"}'), 1);
    assert.equal(v('tensorfleet_job_step{job="p1"}'), 7);
    assert.equal(v('tensorfleet_job_images_per_second{job="p1"}'), 0, 'a paused job trains at 0');
    assert.equal(v('tensorfleet_job_info{job="q1",model="resnet8",name="waits",state="queued"}'), 1);
    assert.equal(v('tensorfleet_job_checkpoint_age_seconds{job="q1"}'), undefined, 'no checkpoint, no age');
    assert.ok(![...samples.keys()].some((k) => k.includes('job="done-')), 'finished jobs get no per-job series');
    assert.deepEqual([v('tensorfleet_workers_registered'), v('tensorfleet_workers_alive'), v('tensorfleet_workers_busy')], [2, 1, 1]);
    assert.equal(v('tensorfleet_worker_state{state="busy",worker="w1"}'), 1);
    assert.equal(v('tensorfleet_worker_state{state="idle",worker="w1"}'), 0);
    assert.equal(v('tensorfleet_worker_state{state="lost",worker="w2"}'), 1);
    assert.equal(v('tensorfleet_worker_info{backend="onednn",device="cpu",host="h1",worker="w1"}'), 1);
    assert.ok(samples.has('tensorfleet_coordinator_process_resident_memory_bytes'));
  });

  test('a scrape issues as many Redis commands with 10,000 finished jobs as with 10', async () => {
    // A MetricsService on connections of its own, so MONITOR can tell its commands from the coordinator's background work.
    const own = new Redis(services.redisUrl);
    const queueConn = new Redis(services.redisUrl, { maxRetriesPerRequest: null });
    const queue = new Queue(coord.config.queueName, { connection: queueConn, prefix: coord.config.prefix });
    const metrics = new MetricsService(new ControlPlane(own, { prefix }), { queue } as unknown as SchedulerService);
    const monitorConn = new Redis(services.redisUrl);
    // Both workers alive for the whole test: the coordinator's sweep must not forget one between the two scrapes.
    for (const id of ['w1', 'w2']) await control.heartbeat(id, 600_000);
    const counted = async (): Promise<{ commands: number; text: string }> => {
      await metrics.render(); // BullMQ loads its scripts on first use: count a warm scrape
      const ports = new Set([own.stream.localPort, queueConn.stream.localPort].map(String));
      const monitor = await monitorConn.monitor();
      let commands = 0;
      monitor.on('monitor', (_t: string, _args: string[], source: string) => { if (ports.has(source.split(':').pop()!)) commands++; });
      const text = await metrics.render();
      await new Promise((r) => setTimeout(r, 200));
      monitor.disconnect();
      return { commands, text };
    };
    try {
      const small = await counted();
      const t0 = Date.now();
      await finishedJobs(10_000 - 10, 10);
      console.log(`# seeded 9,990 more finished jobs in ${Date.now() - t0} ms`);
      const large = await counted();
      console.log(`# Redis commands per scrape: ${small.commands} with 10 finished jobs, ${large.commands} with 10,000`);
      assert.ok(small.commands > 0 && small.commands < 60, `${small.commands} commands`);
      assert.equal(large.commands, small.commands);
      const { samples } = parseExposition(large.text);
      assert.equal(samples.get('tensorfleet_jobs{state="completed"}'), 9000);
      assert.equal(samples.get('tensorfleet_jobs{state="failed"}'), 1000);
    } finally {
      await queue.close();
      queueConn.disconnect();
      own.disconnect();
      monitorConn.disconnect();
    }
  });

  test('a coordinator starting on records without state sets builds them once, then serves right counts', async () => {
    const before = parseExposition((await scrape()).text).samples;
    await redis.del(...JOB_STATES.map((s) => control.keys.jobsInState(s)), control.keys.jobStateIndexMarker());
    assert.equal(await control.countJobsByState().then((c) => c.completed), 0, 'the sets are gone');
    const t0 = Date.now();
    const second = await startCoordinator({ port: 0, host: '127.0.0.1', redisUrl: services.redisUrl, s3: services.s3, prefix, quiet: true, apiTokens: [{ token: READ, access: 'read' }] });
    console.log(`# coordinator start with the migration of ${await redis.zcard(control.keys.jobs())} job records: ${Date.now() - t0} ms`);
    try {
      const res = await fetch(`${second.url}/metrics`, { headers: { authorization: `Bearer ${READ}` } });
      const after = parseExposition(await res.text()).samples;
      // The seeded active jobs may end meanwhile (this coordinator's scheduler takes them up), so the
      // finished counts can only have grown; and every job is in exactly one set.
      for (const s of ['completed', 'failed', 'cancelled']) {
        const [was, now] = [before.get(`tensorfleet_jobs{state="${s}"}`)!, after.get(`tensorfleet_jobs{state="${s}"}`)!];
        assert.ok(now >= was && now <= was + 3, `${s}: ${was} before, ${now} after`);
      }
      const total = JOB_STATES.reduce((n, s) => n + (after.get(`tensorfleet_jobs{state="${s}"}`) ?? 0), 0);
      assert.equal(total, await redis.zcard(control.keys.jobs()));
      assert.ok(await redis.exists(control.keys.jobStateIndexMarker()));
      const t1 = Date.now();
      assert.equal(await control.indexJobStates({ force: true }), total);
      console.log(`# indexJobStates of ${total} job records alone: ${Date.now() - t1} ms`);
    } finally {
      await second.close();
    }
  });

  test('infra/grafana/tensorfleet.json is valid and every expression names metrics the coordinator exports', async () => {
    const dashboard = JSON.parse(readFileSync(GRAFANA, 'utf8'));
    const exported = new Set(parseExposition((await scrape()).text).types.keys());
    const exprs: string[] = [];
    const walk = (o: unknown): void => {
      if (Array.isArray(o)) o.forEach(walk);
      else if (o && typeof o === 'object') {
        for (const [k, v] of Object.entries(o)) {
          if (k === 'expr' && typeof v === 'string') exprs.push(v);
          else walk(v);
        }
      }
    };
    walk(dashboard.panels);
    assert.ok(exprs.length >= 15, `${exprs.length} expressions`);
    const used = new Set<string>();
    for (const e of exprs) {
      const names = e.match(/\btensorfleet_\w+/g) ?? [];
      assert.ok(names.length > 0, `"${e}" names no tensorfleet metric`);
      for (const n of names) {
        // Counters are exposed as <name> in TYPE lines and queried as <name>_total or <name>.
        assert.ok(exported.has(n) || exported.has(n.replace(/_total$/, '')), `"${e}" uses ${n}, which /metrics does not export`);
        used.add(n);
      }
    }
    for (const n of ['tensorfleet_job_steps_per_second', 'tensorfleet_job_restarts', 'tensorfleet_job_checkpoint_age_seconds', 'tensorfleet_worker_state']) {
      assert.ok(used.has(n), `the dashboard does not show ${n}`);
    }
    assert.equal(dashboard.templating.list[0].query.query, 'label_values(tensorfleet_job_info, job)');
  });
});
