// The dashboard in a real browser (headless Chromium driven by playwright-core) against a
// real coordinator and worker processes on a private Redis and Swift: the page lists the
// workers and the job, the job's charts grow as steps arrive, Pause, Resume and Cancel on the
// page do what they say; and a coordinator with FLEET_API_TOKEN makes the page ask for the token and then work.
// Screenshots: test-artifacts/dashboard/*.png at the repository root.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Redis from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { ControlPlane } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import type { LocalCluster } from '@tensorfleet/cli';
import { artifactDir, launchChromium, pageErrors, until } from '../support/browser';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';

const shots = artifactDir('dashboard');
const points = (page: Page, chart: string) => page.locator(`[data-chart="${chart}"]`).getAttribute('data-points').then(Number);

describe('dashboard in headless Chromium, against a running job', { timeout: 10 * 60_000 }, () => {
  let cluster: LocalCluster;
  let browser: Browser;
  const bucket = uniqueBucket('dash');
  const prefix = 'datasets/synthetic';

  before(async () => {
    [cluster, browser] = await Promise.all([startTestCluster({
      name: 'dashboard', workers: 1,
      // A longer heartbeat (TTL 15 s) than the default 2 s (TTL 6 s): on a loaded test machine a
      // worker starting a job has been declared lost, and this test is about the page, not recovery.
      workerEnv: { FLEET_HEARTBEAT_MS: '5000' },
    }), launchChromium()]);
    await writeSyntheticDataset(new ObjectStore(cluster.s3), { bucket, prefix, numClasses: 4, imageSize: 32, trainPerClass: 32, valPerClass: 8, samplesPerShard: 64, seed: 5 });
  });

  after(async () => {
    await browser?.close();
    await cluster?.stop();
  });

  it('lists the worker and the job; the charts grow as steps arrive; Pause, Resume and Cancel work', async () => {
    const { id } = await cluster.client.submitJob({
      name: 'dash-e2e', model: { name: 'resnet8' }, dataset: { bucket, prefix }, parallelism: { dataParallel: 1 },
      batchSize: 8, epochs: 500, optimizer: { type: 'sgd', lr: 0.05 }, checkpoint: { intervalSteps: 5, keep: 2 }, seed: 3,
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      await runningJobScenario(page, id);
    } catch (e) {
      await page.screenshot({ path: join(shots, 'job-failure.png'), fullPage: true }).catch(() => undefined);
      throw new Error(`${(e as Error).message} (screenshot ${join(shots, 'job-failure.png')}, logs ${cluster.logDir})`);
    } finally {
      await page.close();
    }
  });

  async function runningJobScenario(page: Page, id: string): Promise<void> {
    const errors = pageErrors(page);
    await page.goto(cluster.client.baseUrl + '/');

    const [worker] = await cluster.client.listWorkers();
    const row = page.locator(`#workers tr[data-worker="${worker.id}"]`);
    await row.waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), new RegExp(`${worker.backend}\\s+${worker.device}`), 'the worker row shows its backend and device');
    const jobRow = page.locator(`#jobs tr[data-job="${id}"]`);
    await jobRow.waitFor({ timeout: 30_000 });
    assert.match(await jobRow.innerText(), /dash-e2e[\s\S]*resnet8/);
    // Once the job holds the worker, the worker row names it and its rank.
    await until('the worker row to show the job', async () => (await row.innerText()).includes(id), 120_000);
    assert.match(await row.innerText(), /busy/);
    await page.screenshot({ path: join(shots, 'cluster.png'), fullPage: true });

    await jobRow.locator(`a[data-job="${id}"]`).click();
    await page.waitForURL(new RegExp(`#/jobs/${id}$`));
    const first = await until('the loss chart to show two steps', async () => { const n = await points(page, 'loss'); return n >= 2 && n; }, 180_000);
    const later = await until('the loss chart to grow', async () => { const n = await points(page, 'loss'); return n > first && n; }, 120_000);
    const { entries } = await cluster.client.metrics(id);
    const trained = new Set(entries.filter((m) => m.kind === 'train').map((m) => Number(m.step))).size;
    assert.ok(later <= trained, `the chart draws ${later} steps, the API has ${trained}`);
    for (const chart of ['accuracy', 'lr', 'throughput']) assert.ok(await points(page, chart) >= first, `the ${chart} chart has no points`);
    assert.equal(await page.locator('[data-chart="loss"] canvas').count(), 1, 'uPlot drew a canvas');

    // The layout names the worker holding rank 0; the spec is the job's; the logs section answers.
    await page.locator('#layout tr[data-rank="0"]').waitFor();
    assert.match(await page.locator('#layout tr[data-rank="0"]').innerText(), new RegExp(`${worker.id}[\\s\\S]*whole model`));
    assert.equal(JSON.parse(await page.locator('[data-spec]').innerText()).model.name, 'resnet8');
    await page.locator('#logs [data-logs]').waitFor();
    await page.screenshot({ path: join(shots, 'job-running.png'), fullPage: true });

    // Pause: the rank checkpoints and stops; Resume: it goes on from there and the chart with it.
    const state = async (want: string) => until(`the job to be ${want}`, async () => (await cluster.client.getJob(id)).state === want, 120_000);
    await page.locator('button[data-action="pause"]').click();
    await state('paused');
    await page.locator('.title[data-state="paused"]').waitFor({ timeout: 30_000 });
    const atPause = await points(page, 'loss');
    await page.locator('button[data-action="resume"]:not([disabled])').click();
    await state('running');
    await until('the chart to grow after the resume', async () => (await points(page, 'loss')) > atPause, 180_000);

    page.once('dialog', (d) => void d.accept());
    await page.locator('button[data-action="cancel"]').click();
    const cancelled = await until('the job to be cancelled', async () => { const j = await cluster.client.getJob(id); return j.state === 'cancelled' && j; }, 60_000);
    assert.equal(cancelled.state, 'cancelled');
    await page.locator('.title[data-state="cancelled"]').waitFor({ timeout: 30_000 });
    assert.ok(await page.locator('button[data-action="cancel"]').isDisabled(), 'a cancelled job offers no Cancel');
    await page.locator('#events tr[data-event="job-state"]').first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: join(shots, 'job-cancelled.png'), fullPage: true });
    assert.deepEqual(errors, []);
  }
});

describe('dashboard with FLEET_API_TOKEN set', { timeout: 5 * 60_000 }, () => {
  const WRITE = 'dashboard-write-token-0123456789';
  const READ = 'dashboard-read-token-0123456789';
  let cluster: LocalCluster;
  let redis: Redis;
  let browser: Browser;
  let jobId = '';
  const workerId = 'dash-token-worker';

  before(async () => {
    // The coordinator process reads its tokens from the environment it starts with; the
    // cluster's API client (FLEET_API_TOKEN at construction) then sends the write token.
    const saved = { write: process.env.FLEET_API_TOKEN, read: process.env.FLEET_API_READ_TOKEN };
    Object.assign(process.env, { FLEET_API_TOKEN: WRITE, FLEET_API_READ_TOKEN: READ });
    try {
      cluster = await startTestCluster({ name: 'dashboard-token', workers: 0 });
    } finally {
      restoreEnv('FLEET_API_TOKEN', saved.write);
      restoreEnv('FLEET_API_READ_TOKEN', saved.read);
    }
    redis = new Redis(cluster.redisUrl);
    // A registered worker with no process behind it: the page only has to list it.
    await new ControlPlane(redis, { prefix: cluster.prefix }).registerWorker({ id: workerId, host: 'test-host', pid: 1, backend: 'wasm', device: 'cpu', address: { hostId: 'h', tcp: 'tcp://127.0.0.1:1', ipc: null } });
    const bucket = uniqueBucket('dash-token');
    await writeSyntheticDataset(new ObjectStore(cluster.s3), { bucket, prefix: 'ds', numClasses: 2, imageSize: 32, trainPerClass: 8, valPerClass: 2, samplesPerShard: 16, seed: 1 });
    // Two ranks and one (idle, processless) worker: the job stays queued.
    ({ id: jobId } = await cluster.client.submitJob({ name: 'waiting', model: { name: 'resnet8' }, dataset: { bucket, prefix: 'ds' }, parallelism: { dataParallel: 2 }, batchSize: 8, epochs: 1, optimizer: { type: 'sgd', lr: 0.1 } }));
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    redis?.disconnect();
    await cluster?.stop();
  });

  it('the coordinator refuses the API without a token', async () => {
    assert.equal((await fetch(`${cluster.client.baseUrl}/workers`)).status, 401);
  });

  it('asks for the token on the first 401, once, and then lists the worker and the queued job', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const errors = pageErrors(page);
    const prompts: string[] = [];
    page.on('dialog', (d) => { prompts.push(d.message()); void d.accept(WRITE); });
    await page.goto(cluster.client.baseUrl + '/');
    await page.locator(`#workers tr[data-worker="${workerId}"]`).waitFor({ timeout: 30_000 });
    await page.locator(`#queue tr[data-job="${jobId}"]`).waitFor({ timeout: 30_000 });
    assert.equal(prompts.length, 1, `asked ${prompts.length} times: ${prompts.join(' | ')}`);
    assert.match(prompts[0], /FLEET_API_TOKEN/);
    assert.equal(await page.evaluate('localStorage.getItem("fleet.apiToken")'), WRITE);
    // The job page's event stream carries the token as ?access_token= and fills the record in.
    const stream = page.waitForResponse((r) => r.url().includes(`/jobs/${jobId}/events?`), { timeout: 30_000 });
    await page.locator(`#queue a[data-job="${jobId}"]`).click();
    await page.locator('.title[data-state="queued"]').waitFor({ timeout: 30_000 });
    const events = await stream;
    assert.equal(events.status(), 200);
    assert.match(events.url(), new RegExp(`access_token=${WRITE}`));
    // A restart written to the record reaches the open page over the event stream.
    await new ControlPlane(redis, { prefix: cluster.prefix }).updateJob(jobId, {
      restarts: [{ at: Date.now(), cause: 'stopped heartbeating', worker: workerId, fromStep: 40, lostSteps: 7 }],
    });
    const restart = page.locator('#restarts tbody tr', { hasText: 'stopped heartbeating' });
    await restart.waitFor({ timeout: 30_000 });
    assert.match(await restart.innerText(), new RegExp(`${workerId}\\s+stopped heartbeating\\s+40\\s+7`));
    await page.screenshot({ path: join(shots, 'token-prompted.png'), fullPage: true });
    assert.equal(prompts.length, 1);
    assert.deepEqual(errors, []);
    await ctx.close();
  });

  it('takes a read token from #token= without asking, and hides it from the address bar', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const prompts: string[] = [];
    page.on('dialog', (d) => { prompts.push(d.message()); void d.dismiss(); });
    await page.goto(`${cluster.client.baseUrl}/#token=${READ}`);
    await page.locator(`#workers tr[data-worker="${workerId}"]`).waitFor({ timeout: 30_000 });
    assert.deepEqual(prompts, []);
    assert.doesNotMatch(page.url(), /token/);
    await ctx.close();
  });

  it('a declined prompt leaves a banner with an Enter token button, which then works', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    let answer: string | null = null;
    page.on('dialog', (d) => void (answer === null ? d.dismiss() : d.accept(answer)));
    await page.goto(cluster.client.baseUrl + '/');
    await page.locator('#enter-token').waitFor({ timeout: 30_000 });
    assert.match(await page.locator('#banner').innerText(), /needs an API token/);
    await page.screenshot({ path: join(shots, 'token-declined.png'), fullPage: true });
    answer = READ;
    await page.locator('#enter-token').click();
    await page.locator(`#workers tr[data-worker="${workerId}"]`).waitFor({ timeout: 30_000 });
    assert.ok(await page.locator('#banner').isHidden());
    await ctx.close();
  });
});

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}
