import type { Command } from 'commander';
import { clusterPaths, defaultClusterDir, printableSettings, selectedClusterDir } from '../background/cluster-dir';
import { startCluster } from '../background/cluster-up';
import { stopCluster } from '../background/cluster-down';
import { clusterState, type ClusterState } from '../background/cluster-state';
import { fail, printTable } from '../lib/output';

const int = (v: string) => Number(v);

export function registerCluster(program: Command): void {
  program
    .command('up')
    .description('start a local cluster in the background: Redis (persistent), S3, the coordinator and N workers; other commands then use it')
    .option('--workers <n>', 'worker processes (default: one per GPU, else one per core; a restart keeps the last count)', int)
    .option('--dir <dir>', `the cluster's folder: data, logs, PIDs, settings (default ${defaultClusterDir()})`)
    .option('--port <n>', 'coordinator port (default: the last one when free, else a free one)', int)
    .option('--tls', 'Redis over TLS only and S3 over https, with a CA made for the cluster (chosen at the first start, then kept)')
    .option('--timeout <s>', 'seconds to wait for the coordinator and the workers', int, 180)
    .option('--json', 'print the settings as JSON')
    .action(async (o: { workers?: number; dir?: string; port?: number; tls?: boolean; timeout: number; json?: boolean }) => {
      const dir = o.dir ?? defaultClusterDir();
      const result = await startCluster({ dir, workers: o.workers, port: o.port, tls: o.tls, timeoutMs: o.timeout * 1000, log: (m) => console.error(`fleet up: ${m}`) })
        .catch((e: Error) => fail(e.message));
      const s = result.settings;
      if (o.json) return console.log(JSON.stringify({ ...printableSettings(s), alreadyRunning: result.alreadyRunning, tokenFile: clusterPaths(s.dir).token, redisPasswordFile: clusterPaths(s.dir).redisPassword }, null, 2));
      console.log(result.alreadyRunning ? `a cluster already runs in ${s.dir} (nothing started)` : `cluster up in ${s.dir}`);
      console.log(`  coordinator  ${s.coordinatorUrl}  (API docs ${s.coordinatorUrl}/docs)`);
      console.log(`  dashboard    ${s.coordinatorUrl}/#token=${result.token}`);
      console.log(`  workers      ${s.workers}`);
      console.log(`  logs         ${clusterPaths(s.dir).logs}`);
      console.log('Other fleet commands (submit, jobs, ingest, ...) now use it. `fleet status` shows it, `fleet down` stops it.');
    });

  program
    .command('status')
    .description('what the local cluster runs: each process with PID, port and log; coordinator readiness; registered workers')
    .option('--dir <dir>', 'the cluster folder (default: the one `fleet up` started last)')
    .option('--json', 'print JSON')
    .action(async (o: { dir?: string; json?: boolean }) => {
      const state = await clusterState(selectedClusterDir(o.dir)).catch((e: Error) => fail(e.message));
      const up = isUp(state);
      if (o.json) console.log(JSON.stringify({ ...state, settings: state.settings && printableSettings(state.settings), up }, null, 2));
      else printStatus(state);
      // like `systemctl status`: 3 when it is not running, so scripts can test it
      if (!up) process.exitCode = 3;
    });

  program
    .command('down')
    .description('stop the local cluster (workers, coordinator, S3, Redis); its data stays for the next `fleet up`')
    .option('--dir <dir>', 'the cluster folder (default: the one `fleet up` started last)')
    .option('--purge', 'also delete the folder: datasets, jobs, checkpoints and logs')
    .action(async (o: { dir?: string; purge?: boolean }) => {
      const dir = selectedClusterDir(o.dir);
      const stopped = await stopCluster({ dir, purge: o.purge, log: (m) => console.error(`fleet down: ${m}`) }).catch((e: Error) => fail(e.message));
      console.log(stopped.length ? `cluster in ${dir} stopped${o.purge ? ' and deleted' : '; its data stays for the next `fleet up`'}` : `nothing was running in ${dir}`);
    });
}

function isUp(state: ClusterState): boolean {
  return !!state.settings && state.processes.length > 0 && state.processes.every((p) => p.alive) && !!state.ready?.ready;
}

function printStatus(state: ClusterState): void {
  const s = state.settings;
  if (!s) {
    console.log(`no cluster in ${state.dir}: start one with \`fleet up\``);
    return;
  }
  const paths = clusterPaths(state.dir);
  console.log(`cluster in ${state.dir} (settings ${paths.settings}, API token ${paths.token})`);
  // PIDs and ports as text: no thousands separators
  printTable(state.processes.map((p) => ({ process: p.name, pid: String(p.pid ?? ''), alive: p.alive ? 'yes' : 'no', port: String(p.port ?? ''), log: p.log })));
  const ready = state.ready;
  console.log(`coordinator  ${s.coordinatorUrl}: ${ready === null ? 'not answering' : ready.ready ? 'ready (Redis and S3 answer)' : `not ready: ${JSON.stringify(ready.detail)}`}`);
  if (ready) console.log(`dashboard    ${s.coordinatorUrl}/ (token in ${paths.token})`);
  const r = state.registered;
  console.log(`workers      ${r ? `${r.alive}/${s.workers} registered, ${r.idle} idle` : `${s.workers} started, registry not reachable`}`);
  if (!isUp(state)) console.log('not (fully) running: `fleet up` starts what is missing');
}
