// Two hosts, one worker each, with a real coordinator, Redis and Swift: every worker runs in a
// network namespace of its own (a simulated host, see @tensorfleet/collective's netns
// helpers) and all-reduces with the other over tcp on a shaped data link. The control plane
// (Redis, S3) is reached over a second link per host, through forwards on the root
// namespace's address on the control bridge. The data link is cut mid-run: both ranks stop
// with a typed collective error (PEER_LOST/TIMEOUT) within the deadline, the coordinator
// restarts the run from its last checkpoint, and on the restored link the job completes.
// Skipped, with the reason, where network namespaces cannot be made (not root).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { createHostNetwork, cutLink, destroyOnExit, linkIsUp, netnsUnavailable, restoreLink, type HostNetwork, type SimulatedHost } from '@tensorfleet/collective';
import { ControlPlane, type JobEvent } from '@tensorfleet/control';
import { ObjectStore, writeSyntheticDataset } from '@tensorfleet/data';
import { appEntry, followJob, ManagedProcess, serviceEnv, waitUntil, type LocalCluster } from '@tensorfleet/cli';
import { startTestCluster, uniqueBucket } from '../support/test-cluster';
import { forwardTcp, type TcpForward } from '../support/tcp-forward';

const unavailable = netnsUnavailable();
const skip = unavailable ? `network namespaces are not available: ${unavailable}` : false;
// as the other fault tests: a step's all-reduce also waits for the slower rank's compute,
// which on a loaded 2-core machine can take seconds
const COLLECTIVE_TIMEOUT_MS = 8000;

describe('two hosts in network namespaces, the link between them cut mid-run', { timeout: 6 * 60_000, skip }, () => {
  let net: HostNetwork | undefined;
  let cluster: LocalCluster | undefined;
  let redis: Redis | undefined;
  let control: ControlPlane;
  const forwards: TcpForward[] = [];
  const workers: ManagedProcess[] = [];
  const bucket = uniqueBucket('linkcut');
  const prefix = 'datasets/synthetic';
  let forgetNet = () => undefined as void;

  before(async () => {
    net = createHostNetwork({ hosts: 2, rateMbit: 200, tag: `k${process.pid % 10000}`, controlPlane: true });
    forgetNet = destroyOnExit(net); // an interrupted run still removes its namespaces
    cluster = await startTestCluster({ name: 'linkcut', workers: 0 });
    const redisUrl = new URL(cluster.redisUrl);
    const redisFwd = await forwardTcp(net.rootIp!, redisUrl.hostname, Number(redisUrl.port));
    const s3Fwd = await forwardTcp(net.rootIp!, cluster.s3.endPoint, cluster.s3.port);
    forwards.push(redisFwd, s3Fwd);
    const hostEnv = serviceEnv(`redis://${net.rootIp}:${redisFwd.port}`, { ...cluster.s3, endPoint: net.rootIp!, port: s3Fwd.port }, cluster.prefix);
    for (const host of net.hosts) workers.push(startWorkerIn(host, cluster.logDir, hostEnv));
    await waitUntil('both namespace workers to register', async () => {
      const dead = workers.find((w) => !w.running);
      if (dead) throw new Error(`${dead.name} exited during start-up; see ${dead.logFile}`);
      const ws = await cluster!.client.listWorkers();
      return ws.filter((w) => w.alive && w.state === 'idle').length >= 2;
    }, 90_000);
    await writeSyntheticDataset(new ObjectStore(cluster.s3), { bucket, prefix, numClasses: 4, imageSize: 32, trainPerClass: 32, valPerClass: 4, samplesPerShard: 16, seed: 9 });
    redis = new Redis(cluster.redisUrl);
    control = new ControlPlane(redis, { prefix: cluster.prefix });
  });

  after(async () => {
    redis?.disconnect();
    await Promise.all(workers.map((w) => w.stop()));
    await Promise.all(forwards.map((f) => f.close()));
    await cluster?.stop();
    net?.destroy();
    forgetNet();
  });

  it('both ranks fail with PEER_LOST/TIMEOUT within the deadline, the run restarts on the restored link and completes', async (t) => {
    const steps = 16;
    const { id } = await cluster!.client.submitJob({
      name: 'linkcut',
      model: { name: 'resnet8' },
      dataset: { bucket, prefix },
      parallelism: { dataParallel: 2 },
      // restarts for other reasons (a heartbeat starved by load) must not spend the budget the cut needs
      recovery: { maxRestarts: 4 },
      batchSize: 8,
      steps,
      optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
      augmentation: 'small',
      checkpoint: { intervalSteps: 2, keep: 4 },
      evaluation: { atEnd: false },
      seed: 5,
    });
    const running = await followJob(cluster!.client, id, undefined, { until: (j) => (j.step ?? 0) >= 4 && !!j.lastCheckpoint, intervalMs: 100, timeoutMs: 2 * 60_000 });
    assert.equal(running.state, 'running', `the job is ${running.state} before the cut: ${running.error ?? ''} (logs: ${cluster!.logDir})`);
    const firstRun = running.runId;
    const firstMembers = (running.members ?? []).map((m) => m.workerId).sort();
    const hosts = net!.hosts;

    const cutAt = Date.now();
    cutLink(hosts[1]);
    let failures: JobEvent[] = [];
    try {
      await waitUntil('both ranks to report the cut', async () => {
        failures = (await control.readEvents(id, '-', 10_000)).filter((e) => e.type === 'rank-failed' && e.runId === firstRun);
        return failures.length >= 2;
      }, 4 * COLLECTIVE_TIMEOUT_MS);
    } finally {
      restoreLink(hosts[1]); // also when the assertion fails: the restart needs the link
    }
    const detectMs = Date.now() - cutAt;
    t.diagnostic(`both ranks reported within ${detectMs} ms of the cut (collective deadline ${COLLECTIVE_TIMEOUT_MS} ms): ${failures.map((f) => String(f.message).slice(0, 90)).join(' | ')}`);
    for (const f of failures) assert.match(String(f.message), /PEER_LOST|TIMEOUT/, `rank ${f.rank} failed without a typed collective error: ${f.message}`);
    // one deadline plus its grace and the report through Redis; slack for a loaded machine
    assert.ok(detectMs < COLLECTIVE_TIMEOUT_MS + 5000, `the ranks took ${detectMs} ms to report, deadline ${COLLECTIVE_TIMEOUT_MS} ms`);
    assert.ok(linkIsUp(hosts[1]));

    const done = await followJob(cluster!.client, id, undefined, { timeoutMs: 3 * 60_000, intervalMs: 250 });
    assert.equal(done.state, 'completed', `the job ended ${done.state}: ${done.error ?? ''} (logs: ${cluster!.logDir})`);
    assert.equal(Number(done.step), steps);
    const restarts = (done.restarts ?? []).filter((r) => r.at >= cutAt);
    assert.ok(restarts.length >= 1, `no restart after the cut: ${JSON.stringify(done.restarts)}`);
    t.diagnostic(`restarts after the cut: ${JSON.stringify(restarts)}`);
    assert.match(restarts[0].cause, /stalled a collective/, 'both workers kept heartbeating over the control link: the cut reads as a broken collective, not a lost worker');
    assert.ok(restarts[0].fromStep >= 2, `the restart went back to step ${restarts[0].fromStep}, not to a checkpoint`);
    assert.notEqual(done.runId, firstRun, 'the restart is a new run');
    assert.deepEqual((done.members ?? []).map((m) => m.workerId).sort(), firstMembers, 'the restarted run is on the same two hosts, over the restored link');
    const events = await control.readEvents(id, '-', 10_000);
    assert.ok(events.some((e) => e.type === 'job-state' && /automatic restart \d of 4/.test(String(e.message)) && /PEER_LOST|TIMEOUT/.test(String(e.message))), 'no restart event naming the collective error');
  });
});

/** A worker process inside `host` (`ip netns exec`), binding its collective socket on the host's data address. */
function startWorkerIn(host: SimulatedHost, logDir: string, env: NodeJS.ProcessEnv): ManagedProcess {
  const name = `worker-${host.name}`;
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(host.exec[0], [...host.exec.slice(1), process.execPath, '--enable-source-maps', appEntry('@tensorfleet/worker')], {
    env: {
      ...process.env,
      ...env,
      WORKER_ID: `linkcut-${host.name}-${process.pid}`,
      FLEET_BIND_HOST: host.ip,
      FLEET_HOST_ID: host.name,
      FLEET_COLLECTIVE_TIMEOUT_MS: String(COLLECTIVE_TIMEOUT_MS),
      FLEET_HEARTBEAT_MS: '1000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return new ManagedProcess(name, child, logFile);
}
