import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CoordinatorClient } from '../lib/api-client';
import { clusterPaths, readSettings, readToken, type ClusterPaths, type ClusterSettings } from './cluster-dir';
import { livePid, readPid } from './daemon-process';
import { redisMarker } from './redis-aof';
import { swiftLogs, swiftProxyPid, swiftStoreUp } from './swift-store';

/** One process of the cluster as `fleet status` shows it. */
export interface ProcessState {
  name: string;
  pid: number | null;
  alive: boolean;
  port?: number;
  log: string;
}

export interface ClusterState {
  dir: string;
  settings: ClusterSettings | null;
  processes: ProcessState[];
  /** GET /readyz: null when the coordinator does not answer. */
  ready: { ready: boolean; detail: unknown } | null;
  /** Workers of this cluster in the registry with a live heartbeat (null: coordinator unreachable). */
  registered: { alive: number; idle: number; ids: string[] } | null;
}

/** The environment entry that marks a coordinator or worker of the cluster in `dir` (see isOurs). */
export function nodeMarker(dir: string, name: string): string {
  return `FLEET_CLUSTER_PROCESS=${dir}#${name}`;
}

export function workerNames(paths: ClusterPaths): string[] {
  let files: string[] = [];
  try {
    files = readdirSync(paths.run);
  } catch {
    return [];
  }
  return files.map((f) => /^(worker-\d+)\.pid$/.exec(f)?.[1]).filter((n): n is string => !!n)
    .sort((a, b) => Number(a.slice(7)) - Number(b.slice(7)));
}

/** The processes only (no HTTP): what `fleet up` and `fleet down` decide on. */
export function processStates(dir: string, settings: ClusterSettings | null): ProcessState[] {
  const paths = clusterPaths(dir);
  if (!settings) return [];
  const redisPid = readPid(paths.run, 'redis');
  const nodeState = (name: string, port?: number): ProcessState => {
    const pid = readPid(paths.run, name);
    return { name, pid, alive: livePid(paths.run, name, nodeMarker(paths.dir, name)) !== null, port, log: join(paths.logs, `${name}.log`) };
  };
  return [
    { name: 'redis', pid: redisPid, alive: livePid(paths.run, 'redis', redisMarker(settings.ports.redis)) !== null, port: settings.ports.redis, log: join(paths.logs, 'redis.log') },
    // alive is filled in by clusterState (swift.sh status makes an S3 request)
    { name: 's3', pid: swiftProxyPid(paths), alive: false, port: settings.ports.s3, log: swiftLogs(paths) },
    nodeState('coordinator', settings.ports.coordinator),
    ...workerNames(paths).map((n) => nodeState(n)),
  ];
}

export async function clusterState(dir: string): Promise<ClusterState> {
  const paths = clusterPaths(dir);
  const settings = readSettings(paths.dir);
  const processes = processStates(paths.dir, settings);
  const state: ClusterState = { dir: paths.dir, settings, processes, ready: null, registered: null };
  if (!settings) return state;
  processes[1].alive = await swiftStoreUp(paths);
  const client = new CoordinatorClient(settings.coordinatorUrl, readToken(paths.dir) ?? undefined);
  state.ready = await readiness(settings.coordinatorUrl);
  if (state.ready) {
    const ids = new Set(workerIds(settings.workers));
    const workers = await client.listWorkers().catch(() => null);
    if (workers) {
      const ours = workers.filter((w) => ids.has(w.id) && w.alive);
      state.registered = { alive: ours.length, idle: ours.filter((w) => w.state === 'idle').length, ids: ours.map((w) => w.id) };
    }
  }
  return state;
}

/** The worker IDs `fleet up` gives its workers: the same on every start, so a restart re-registers them. */
export function workerIds(count: number): string[] {
  return Array.from({ length: count }, (_, i) => workerId(i));
}

export function workerId(i: number): string {
  return `local-w${i}`;
}

async function readiness(url: string): Promise<ClusterState['ready']> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let detail: unknown = text;
    try {
      detail = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { ready: res.ok, detail };
  } catch {
    return null;
  }
}
