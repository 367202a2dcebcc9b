import { rmSync } from 'node:fs';
import { clearCurrentDir, clusterPaths, readSettings } from './cluster-dir';
import { nodeMarker, workerNames } from './cluster-state';
import { stopDaemon } from './daemon-process';
import { stopRedisAof } from './redis-aof';
import { stopSwiftStore, swiftProxyPid } from './swift-store';

export interface DownOptions {
  dir: string;
  /** Also delete the folder: datasets, jobs, checkpoints, logs. */
  purge?: boolean;
  /** Leave ~/.tensorfleet/current alone (a restart follows). */
  keepPointer?: boolean;
  log: (msg: string) => void;
}

/** A worker may be in the middle of a step or a checkpoint upload when asked to stop. */
const WORKER_GRACE_MS = 15_000;
const COORDINATOR_GRACE_MS = 10_000;

/**
 * Stops the workers, then the coordinator, then the S3 server and Redis (each SIGTERM, then
 * SIGKILL after a grace period), and removes their PID files. The data stays unless `purge`.
 * Returns the names of the processes that were running.
 */
export async function stopCluster(opts: DownOptions): Promise<string[]> {
  const paths = clusterPaths(opts.dir);
  const settings = readSettings(paths.dir);
  const stopped: string[] = [];
  const note = (name: string, outcome: string) => {
    if (outcome === 'not running') return;
    stopped.push(name);
    opts.log(`${name}: ${outcome}${outcome === 'killed' ? ' (did not stop on SIGTERM in time)' : ''}`);
  };
  const workers = workerNames(paths);
  await Promise.all(workers.map(async (name) => note(name, await stopDaemon(paths.run, name, nodeMarker(paths.dir, name), WORKER_GRACE_MS))));
  note('coordinator', await stopDaemon(paths.run, 'coordinator', nodeMarker(paths.dir, 'coordinator'), COORDINATOR_GRACE_MS));
  // swift.sh removes its PID files when it stops its processes
  const s3Started = swiftProxyPid(paths) !== null;
  await Promise.all([
    stopSwiftStore(paths).then(() => note('s3', s3Started ? 'stopped' : 'not running')),
    settings ? stopRedisAof(paths, settings.ports.redis).then((o) => note('redis', o)) : Promise.resolve(),
  ]);
  if (!opts.keepPointer) clearCurrentDir(paths.dir);
  if (opts.purge) {
    // Only a folder `fleet up` made: --purge with a mistyped --dir must not delete anything else.
    if (!settings) throw new Error(`${paths.dir} has no cluster.json: not a \`fleet up\` folder, nothing deleted`);
    rmSync(paths.dir, { recursive: true, force: true });
    opts.log(`removed ${paths.dir}`);
  }
  return stopped;
}
