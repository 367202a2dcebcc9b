// End to end: the coordinator booted in-process against a real Redis and a real Swift S3
// (@tensorfleet/infra testServices()), driven over HTTP.
//
// The two "workers" here are registry entries and heartbeat keys written with ControlPlane,
// plus what a worker writes back to Redis (events, going idle). This is a test of the
// scheduler's side of the protocol, not a stand-in for the worker: the real worker
// processes are exercised end to end in test/ (first-job, faults-and-resume).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { ControlPlane, type PeerAddress, type WorkerCommand } from '@tensorfleet/control';
import { ObjectStore, writeManifest } from '@tensorfleet/data';
import { testId, testServices, type Services } from '@tensorfleet/infra';
import { saveCheckpoint } from '@tensorfleet/training';
import { startCoordinator, type RunningCoordinator } from './bootstrap';

const QUEUE = 'tensorfleet-jobs';
let services: Services;
let redis: Redis;
let control: ControlPlane;
let store: ObjectStore;
let bucket: string;
let prefix: string;
let coord: RunningCoordinator | null = null;
const beats = new Map<string, NodeJS.Timeout>();

async function boot(): Promise<RunningCoordinator> {
  return startCoordinator({
    port: 0, host: '127.0.0.1', redisUrl: services.redisUrl, s3: services.s3, prefix, quiet: true,
    claimBackoffMs: 50, claimMaxBackoffMs: 200, followPollMs: 100, lockDurationMs: 1500, maxWorkers: 8,
  });
}

async function http(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(coord!.url + path, {
    method, headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  try { parsed = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: parsed, text };
}

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const address = (id: string): PeerAddress => ({ hostId: 'e2e', tcp: `tcp://127.0.0.1:${40000 + id.length}/${id}`, ipc: null });

/** A registry entry with a live heartbeat (TTL 1 s, refreshed every 200 ms) until stopBeating(). */
async function fakeWorker(id: string): Promise<void> {
  await control.registerWorker({ id, host: 'e2e', pid: process.pid, backend: 'cpu', device: 'cpu', address: address(id) });
  await control.heartbeat(id, 1000);
  beats.set(id, setInterval(() => void control.heartbeat(id, 1000).catch(() => undefined), 200));
}
function stopBeating(id: string): void {
  clearInterval(beats.get(id));
  beats.delete(id);
}

/** Takes a worker's pending commands off its inbox, as the worker's BLPOP loop would. */
async function drain(id: string): Promise<WorkerCommand[]> {
  const cmds = await control.peekCommands(id);
  await redis.del(control.keys.inbox(id));
  return cmds;
}

const validSpec = (over: Record<string, unknown> = {}) => ({
  name: 'e2e', model: { name: 'resnet18', numClasses: 4 }, dataset: { bucket, prefix: 'ds' },
  parallelism: { dataParallel: 2 }, batchSize: 4, steps: 50, optimizer: { type: 'sgd', lr: 0.1 }, ...over,
});

async function queueCounts(): Promise<number> {
  const q = new Queue(QUEUE, { connection: redis.duplicate(), prefix });
  const counts = await q.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed', 'paused');
  await q.close();
  await (await q.client).quit().catch(() => undefined);
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

describe('coordinator e2e', () => {
  before(async () => {
    services = await testServices();
    prefix = testId('coord');
    bucket = testId('coord');
    redis = new Redis(services.redisUrl, { maxRetriesPerRequest: null });
    control = new ControlPlane(redis, { prefix });
    store = new ObjectStore(services.s3);
    await store.ensureBucket(bucket);
    await writeManifest(store, bucket, 'ds', {
      version: 1, name: 'tiny', classes: [0, 1, 2, 3].map((id) => ({ id, name: `c${id}` })),
      splits: { train: { samples: 64, shards: [{ key: 'ds/train-0.tar', samples: 64, bytes: 1 }] } },
      mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25],
    });
    coord = await boot();
  });

  after(async () => {
    for (const id of [...beats.keys()]) stopBeating(id);
    await coord?.close();
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
    await store.removeAll(bucket).catch(() => undefined);
    await services.stop();
  });

  test('malformed jobs get 400 naming the field, and nothing is queued', async () => {
    const { model: _m, ...noModel } = validSpec();
    const cases: [unknown, string][] = [
      [noModel, 'model'],
      [validSpec({ batchSize: -1 }), 'batchSize'],
      [validSpec({ dataset: { bucket, prefix: 'no-such-dataset' } }), 'dataset'],
      [validSpec({ dataset: { bucket: testId('nobucket'), prefix: 'ds' } }), 'dataset'],
      [validSpec({ model: { name: 'resnet9000' } }), 'model.name'],
      [validSpec({ optimizer: { type: 'sgd', lr: -1 } }), 'optimizer.lr'],
      [validSpec({ recovery: { maxRestarts: -1 } }), 'recovery.maxRestarts'],
      [validSpec({ recovery: { minDataParallel: 3 } }), 'recovery.minDataParallel'], // above dataParallel 2
      [validSpec({ batchSize: 64 }), 'batchSize'], // 64 × 2 ranks > 64 training samples
      [validSpec({ model: { name: 'resnet18', numClasses: 3 } }), 'model.numClasses'], // the dataset has 4
      // plans that cannot work: the model, the sections, the micro-batches, the cuts, the cluster
      [validSpec({ parallelism: { dataParallel: 1, modelParallel: { kind: 'alexnet-columns' } } }), 'parallelism.modelParallel.kind'],
      [validSpec({ model: { name: 'alexnet' }, parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline' } } }), 'parallelism.modelParallel.kind'],
      [validSpec({ model: { name: 'resnet8' }, parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 6 } } }), 'parallelism.modelParallel.stages'],
      [validSpec({ parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', microBatches: 3 } } }), 'parallelism.modelParallel.microBatches'],
      [validSpec({ parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 3, microBatches: 2, schedule: '1f1b' } } }), 'parallelism.modelParallel.microBatches'],
      [validSpec({ parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', cuts: ['layer9_0'] } } }), 'parallelism.modelParallel.cuts'],
      [validSpec({ parallelism: { dataParallel: 1, modelParallel: { kind: 'pipeline', stages: 3, cuts: ['layer3_0', 'layer2_0'] } } }), 'parallelism.modelParallel.cuts'],
      [validSpec({ parallelism: { dataParallel: 4, modelParallel: { kind: 'pipeline', stages: 4 } } }), 'parallelism'], // 16 workers > FLEET_MAX_WORKERS 8
    ];
    for (const [spec, field] of cases) {
      const r = await http('POST', '/jobs', spec);
      assert.equal(r.status, 400, `${field}: ${r.text}`);
      assert.deepEqual(r.body.fields, [field], r.text);
      assert.ok(r.body.message[0].startsWith(`${field}: `), r.text);
    }
    assert.equal(await queueCounts(), 0, 'no BullMQ job');
    assert.equal(await redis.zcard(control.keys.jobs()), 0, 'no tf:jobs entry');
    assert.deepEqual(await redis.keys(`${prefix}:job:*`), []);
  });

  test('gang-schedules onto two workers, then fails the job by name when one stops heartbeating', async () => {
    await fakeWorker('wa');
    await fakeWorker('wb');
    const t0 = Date.now();
    const posted = await http('POST', '/jobs', { ...validSpec(), recovery: { maxRestarts: 0 } });
    assert.equal(posted.status, 201, posted.text);
    const id: string = posted.body.id;
    assert.equal(posted.body.totalSteps, 50);
    const [ca, cb] = await until('both assignments', async () => {
      const c = [await control.peekCommands('wa'), await control.peekCommands('wb')];
      return c[0].length && c[1].length ? c : null;
    });
    assert.equal(ca.length, 1);
    assert.equal(cb.length, 1);
    const [a, b] = [ca[0], cb[0]];
    assert.ok(a.type === 'assign' && b.type === 'assign');
    assert.deepEqual([a.assignment.rank, b.assignment.rank], [0, 1]);
    assert.deepEqual([a.assignment.worldSize, b.assignment.worldSize], [2, 2]);
    assert.deepEqual(a.assignment.peers, [address('wa'), address('wb')]);
    assert.equal(a.assignment.runId, b.assignment.runId);
    assert.equal(a.assignment.membershipEpoch, 1);
    assert.equal(a.assignment.jobId, id);
    assert.equal(a.assignment.spec.optimizer.momentum, 0.9, 'the spec goes out with its defaults');
    assert.equal(a.assignment.resume, undefined);
    const running = await http('GET', `/jobs/${id}`);
    assert.equal(running.body.state, 'running');
    assert.deepEqual(running.body.members.map((m: any) => [m.rank, m.workerId]), [[0, 'wa'], [1, 'wb']]);
    const ws = (await http('GET', '/workers')).body;
    assert.deepEqual(ws.map((w: any) => [w.id, w.alive, w.state, w.jobId, w.rank]), [['wa', true, 'busy', id, 0], ['wb', true, 'busy', id, 1]]);
    await drain('wa');
    await drain('wb');

    stopBeating('wb');
    const failed = await until('the job to fail', async () => {
      const j = (await http('GET', `/jobs/${id}`)).body;
      return j.state === 'failed' ? j : null;
    });
    assert.match(failed.error, /worker wb \(rank 1\) stopped heartbeating/);
    assert.ok(Date.now() - t0 < 8000);
    assert.deepEqual(await drain('wa'), [{ type: 'cancel', jobId: id, reason: failed.error, runId: running.body.runId }], 'the cancel names the run');
    assert.deepEqual(await drain('wb'), [], 'the lost worker gets nothing');
    const metrics = (await http('GET', '/metrics')).text;
    assert.match(metrics, /^tensorfleet_jobs\{state="failed"\} 1$/m);
    assert.match(metrics, /^tensorfleet_workers_alive 1$/m);
    // The survivor, as a real worker does after a cancel, goes idle; the lost one is
    // forgotten on request (alive workers and unknown ids are refused).
    await control.markWorker('wa', { state: 'idle', jobId: '', rank: -1 });
    assert.equal((await http('DELETE', '/workers/wa')).status, 409);
    assert.equal((await http('DELETE', '/workers/nobody')).status, 404);
    await until('wb heartbeat key to expire', async () => !(await control.getWorker('wb'))?.alive);
    assert.equal((await http('DELETE', '/workers/wb')).status, 204);
    assert.deepEqual((await http('GET', '/workers')).body.map((w: any) => w.id), ['wa']);
  });

  test('completion, pause, resume from the last checkpoint, cancel; a restarted coordinator reattaches', async () => {
    await fakeWorker('wc');
    const posted = await http('POST', '/jobs', validSpec({ name: 'second', priority: 5 }));
    assert.equal(posted.status, 201, posted.text);
    const id: string = posted.body.id;
    const assigns = await until('assignments', async () => {
      const c = [await control.peekCommands('wa'), await control.peekCommands('wc')];
      return c[0].length && c[1].length ? [...(await drain('wa')), ...(await drain('wc'))] : null;
    });
    const runId = (assigns[0] as Extract<WorkerCommand, { type: 'assign' }>).assignment.runId;

    // Pause: both ranks get `pause`; the job is paused once both report rank-paused.
    const pausing = await http('POST', `/jobs/${id}/pause`);
    assert.equal(pausing.status, 200, pausing.text);
    assert.equal(pausing.body.state, 'running');
    assert.ok(pausing.body.pauseRequested > 0);
    assert.deepEqual((await drain('wa')).map((c) => c.type), ['pause']);
    assert.deepEqual((await drain('wc')).map((c) => c.type), ['pause']);
    await control.appendEvent(id, { type: 'checkpoint', rank: 0, workerId: 'wa', runId, step: 20, checkpointKey: `checkpoints/${id}/20` });
    for (const [rank, w] of [[0, 'wa'], [1, 'wc']] as const) {
      await control.appendEvent(id, { type: 'rank-paused', rank, workerId: w, runId, step: 20 });
      await control.markWorker(w, { state: 'idle', jobId: '', rank: -1 });
    }
    await until('paused', async () => (await control.getJob(id))?.state === 'paused');

    // Resume: a new run (membership epoch 2) that starts from the pause checkpoint.
    const resumed = await http('POST', `/jobs/${id}/resume`);
    assert.equal(resumed.status, 200, resumed.text);
    assert.equal(resumed.body.state, 'queued');
    const again = await until('the resumed run', async () => {
      const c = [await control.peekCommands('wa'), await control.peekCommands('wc')];
      return c[0].length && c[1].length ? [...(await drain('wa')), ...(await drain('wc'))] : null;
    });
    for (const c of again) {
      assert.ok(c.type === 'assign');
      assert.equal(c.assignment.membershipEpoch, 2);
      assert.deepEqual(c.assignment.resume, { checkpointKey: `checkpoints/${id}/20`, step: 20 });
    }
    const run2 = (again[0] as Extract<WorkerCommand, { type: 'assign' }>).assignment.runId;
    assert.notEqual(run2, runId);

    // The coordinator goes away mid-run and a new one takes the job over (BullMQ stalled
    // recovery re-runs the processor, which finds the job running and follows it).
    await coord!.close();
    coord = await boot();
    // Events of the old run must not count: an old rank-completed for this job is ignored.
    await control.appendEvent(id, { type: 'rank-completed', rank: 0, workerId: 'wa', runId, step: 50 });
    for (const [rank, w] of [[0, 'wa'], [1, 'wc']] as const) {
      await control.appendEvent(id, { type: 'rank-completed', rank, workerId: w, runId: run2, step: 50 });
      await control.markWorker(w, { state: 'idle', jobId: '', rank: -1 });
    }
    const done = await until('completed', async () => {
      const j = (await http('GET', `/jobs/${id}`)).body;
      return j.state === 'completed' ? j : null;
    }, 15_000);
    assert.ok(done.finishedAt >= done.startedAt);
    const states = (await control.readEvents(id, '0')).filter((e) => e.type === 'job-state').map((e) => e.state);
    assert.deepEqual(states, ['running', 'paused', 'queued', 'running', 'completed']);

    // Cancel of a job that waits for workers: it never runs, and the queue empties.
    const waiting = await http('POST', '/jobs', validSpec({ parallelism: { dataParallel: 3 } }));
    assert.equal(waiting.status, 201, waiting.text);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await http('GET', `/jobs/${waiting.body.id}`)).body.state, 'queued', 'two workers cannot take a gang of three');
    const cancelled = await http('POST', `/jobs/${waiting.body.id}/cancel`);
    assert.equal(cancelled.body.state, 'cancelled');
    assert.equal((await http('POST', `/jobs/${waiting.body.id}/cancel`)).status, 409);
    await until('the queue to empty', async () => (await queueCounts()) === 0);
    assert.deepEqual((await control.listWorkers()).map((w) => w.state), ['idle', 'idle']);
  });

  test('pause at a step: 400s naming atStep; a queued job\'s assignments and a running job\'s ranks carry it; cleared once paused', async () => {
    // Queued (three workers wanted, two here): the step goes into the record, and into the assignments once it runs.
    const posted = await http('POST', '/jobs', validSpec({ parallelism: { dataParallel: 3 } }));
    assert.equal(posted.status, 201, posted.text);
    const id: string = posted.body.id;
    for (const [body, why] of [[{ atStep: 0 }, /atStep/], [{ atStep: 'ten' }, /atStep/], [{ atStep: 50 }, /atStep: the job ends at step 50/]] as const) {
      const r = await http('POST', `/jobs/${id}/pause`, body);
      assert.equal(r.status, 400, r.text);
      assert.match(JSON.stringify(r.body.message), why);
      assert.deepEqual(r.body.fields, ['atStep']);
    }
    const later = await http('POST', `/jobs/${id}/pause`, { atStep: 10 });
    assert.equal(later.status, 200, later.text);
    assert.equal(later.body.state, 'queued', 'a pause at a step does not pause a queued job now');
    assert.equal(later.body.pauseAtStep, 10);
    await fakeWorker('wd');
    const assigns = await until('assignments', async () => {
      const c = await Promise.all(['wa', 'wc', 'wd'].map((w) => control.peekCommands(w)));
      return c.every((x) => x.length) ? (await Promise.all(['wa', 'wc', 'wd'].map((w) => drain(w)))).flat() : null;
    });
    for (const c of assigns) assert.ok(c.type === 'assign' && c.assignment.pauseAtStep === 10, JSON.stringify(c));
    const runId = (assigns[0] as Extract<WorkerCommand, { type: 'assign' }>).assignment.runId;

    // Running at step 12: a step already reached is refused; a later one goes to every rank.
    await control.updateJob(id, { step: 12 });
    const reached = await http('POST', `/jobs/${id}/pause`, { atStep: 12 });
    assert.equal(reached.status, 400, reached.text);
    assert.match(JSON.stringify(reached.body.message), /atStep: the job is at step 12 already/);
    const moved = await http('POST', `/jobs/${id}/pause`, { atStep: 20 });
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.body.pauseAtStep, 20);
    assert.equal(moved.body.pauseRequested, undefined, 'not a pause now');
    for (const w of ['wa', 'wc', 'wd']) assert.deepEqual(await drain(w), [{ type: 'pause', jobId: id, runId, reason: 'pause after step 20 (through the API)', atStep: 20 }]);
    for (const [rank, w] of [[0, 'wa'], [1, 'wc'], [2, 'wd']] as const) {
      await control.appendEvent(id, { type: 'rank-paused', rank, workerId: w, runId, step: 20 });
      await control.markWorker(w, { state: 'idle', jobId: '', rank: -1 });
    }
    const paused = await until('paused', async () => {
      const j = await control.getJob(id);
      return j?.state === 'paused' ? j : null;
    });
    assert.equal(paused.pauseAtStep, undefined, 'cleared once paused');
    assert.equal((await http('POST', `/jobs/${id}/pause`, { atStep: 30 })).status, 409, 'a paused job is not paused again');
    assert.equal((await http('POST', `/jobs/${id}/cancel`)).status, 200);
    stopBeating('wd');
  });

  test('dashboard, OpenAPI, SSE, metrics history, checkpoints', async () => {
    const page = await http('GET', '/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<title>TensorFleet<\/title>/);
    assert.doesNotMatch(page.text, /(src|href)=["'](https?:)?\/\//, 'no CDN: every file comes from this coordinator');
    // The bundled script and stylesheet the page names are served, with their types.
    const assets = [...page.text.matchAll(/(?:src|href)="(assets\/[^"]+)"/g)].map((m) => m[1]).sort();
    assert.deepEqual(assets, ['assets/main.js', 'assets/style.css']);
    const script = await fetch(`${coord!.url}/assets/main.js`);
    assert.match(script.headers.get('content-type') ?? '', /text\/javascript/);
    assert.match(await script.text(), /fleet\.apiToken/, 'the bundle is the dashboard');
    assert.match((await fetch(`${coord!.url}/assets/style.css`)).headers.get('content-type') ?? '', /text\/css/);
    assert.equal((await fetch(`${coord!.url}/assets/..%2Fpackage.json`)).status, 404, 'only the built files are served');
    const doc = (await http('GET', '/docs-json')).body;
    assert.ok(doc.paths['/jobs'].post);
    // The spec's schema is @tensorfleet/control's: nested objects by reference, with defaults and descriptions.
    const schemas = doc.components.schemas;
    assert.deepEqual(doc.paths['/jobs'].post.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/JobSpec' });
    assert.deepEqual(schemas.JobSpec.required.sort(), ['batchSize', 'dataset', 'model', 'optimizer', 'parallelism']);
    assert.deepEqual(schemas.JobSpec.properties.optimizer, { $ref: '#/components/schemas/OptimizerSpec' });
    assert.equal(schemas.OptimizerSpec.properties.momentum.default, 0.9);
    assert.deepEqual(schemas.ParallelismSpec.properties.modelParallel.allOf, [{ $ref: '#/components/schemas/ModelParallelSpec' }]);
    assert.deepEqual(schemas.ModelParallelSpec.properties.kind.enum, ['alexnet-columns', 'pipeline']);
    assert.match(schemas.CheckpointSpec.properties.bucket.description, /Default: dataset\.bucket/);
    assert.equal(schemas.JobSpec.properties.priority.maximum, 1000);
    assert.deepEqual(doc.paths['/jobs/{id}/resume'].post.requestBody.content['application/json'].schema, { $ref: '#/components/schemas/ResumeJob' });
    assert.deepEqual(schemas.JobViewDoc.properties.spec.allOf, [{ $ref: '#/components/schemas/JobSpec' }]);

    const [job] = (await http('GET', '/jobs?state=completed')).body;
    for (let s = 1; s <= 3; s++) await control.appendMetric(job.id, { kind: 'train', step: s, epoch: 0, loss: 1 / s, accuracy: 0.5, rank: 0, ts: s });
    const m = (await http('GET', `/jobs/${job.id}/metrics?from=-`)).body;
    assert.deepEqual(m.entries.map((e: any) => e.step), [1, 2, 3]);
    assert.deepEqual((await http('GET', `/jobs/${job.id}/metrics?from=${m.entries[0].id}`)).body.entries.map((e: any) => e.loss), [1 / 2, 1 / 3]);

    // The job has ended, so the feed sends its history and closes by itself.
    const sse = await fetch(`${coord!.url}/jobs/${job.id}/events?metricsFrom=0`);
    assert.match(sse.headers.get('content-type') ?? '', /text\/event-stream/);
    const body = await sse.text();
    assert.match(body, /event: metric\nid: [\d-]+\ndata: \{"kind":"train","step":3/);
    assert.match(body, /event: event\n[^\n]*\ndata: \{[^\n]*"state":"completed"/);
    assert.match(body, /event: job\n/);
    assert.match(body, /event: end\n(id: [^\n]*\n)?data: \{"state":"completed"\}\n\n$/, 'the last message tells EventSource to close');
    assert.equal((await http('GET', '/jobs/nope')).status, 404);

    // Checkpoints: only folders with a manifest whose parts are complete count.
    assert.deepEqual((await http('GET', `/jobs/${job.id}/checkpoints`)).body, []);
    const parts = (step: number) => ({ weights: new Uint8Array(10), optimizer: new Uint8Array(6), state: { epoch: 0, step } });
    await saveCheckpoint(store, bucket, job.id, 10, parts(10));
    await saveCheckpoint(store, bucket, job.id, 20, parts(20));
    await store.putObject(bucket, `checkpoints/${job.id}/30/weights.bin`, Buffer.alloc(10)); // no manifest: not committed
    const cps = await http('GET', `/jobs/${job.id}/checkpoints`);
    assert.equal(cps.status, 200, cps.text);
    assert.deepEqual(cps.body.map((c: any) => [c.step, c.key, c.bucket]), [[10, `checkpoints/${job.id}/10`, bucket], [20, `checkpoints/${job.id}/20`, bucket]]);
    assert.ok(cps.body[0].bytes > 16);
  });

  test('GET /jobs and GET /workers come in pages; a bad page parameter is a 400 naming it', async () => {
    const history = (await http('POST', '/jobs', validSpec({ name: 'page-probe' }))).body;
    await http('POST', `/jobs/${history.id}/cancel`);
    const all = (await http('GET', '/jobs?limit=1000')).body.map((j: any) => j.id);
    assert.ok(all.length >= 3, `jobs so far: ${all.length}`);
    const first = (await http('GET', '/jobs?limit=2')).body.map((j: any) => j.id);
    const second = (await http('GET', '/jobs?limit=2&offset=2')).body.map((j: any) => j.id);
    assert.deepEqual([...first, ...second], all.slice(0, 4), 'pages follow the full listing, newest first');
    assert.equal(first[0], history.id);
    for (const bad of ['limit=0', 'limit=1001', 'limit=two', 'offset=-1']) {
      const r = await http('GET', `/jobs?${bad}`);
      assert.equal(r.status, 400, bad);
      assert.deepEqual(r.body.fields, [bad.split('=')[0]]);
      assert.match(r.body.message[0], /must be an integer/);
    }
    for (const id of ['page-a', 'page-b', 'page-c']) await fakeWorker(id);
    const workers = (await http('GET', '/workers')).body.map((w: any) => w.id);
    const i = workers.indexOf('page-a');
    assert.deepEqual((await http('GET', `/workers?limit=2&offset=${i}`)).body.map((w: any) => w.id), ['page-a', 'page-b']);
    assert.equal((await http('GET', '/workers?limit=0')).status, 400);
    for (const id of ['page-a', 'page-b', 'page-c']) {
      stopBeating(id);
      await control.unregisterWorker(id);
    }
  });
});
