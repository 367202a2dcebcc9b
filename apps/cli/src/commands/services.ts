import type { Command } from 'commander';
import { hostname } from 'node:os';
import { appEntry, startProcess } from '../lib/processes';

export function registerServices(program: Command): void {
  program
    .command('coordinator')
    .description('run the coordinator in the foreground (REDIS_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, PORT from the environment)')
    .option('--port <n>', 'HTTP port', process.env.PORT ?? '3000')
    .action(async (o) => {
      process.env.PORT = String(o.port);
      // The app runs in this process from its entry file; the CLI does not link it as a library.
      await import(appEntry('@tensorfleet/coordinator'));
    });

  program
    .command('worker')
    .description('run worker processes in the foreground: one per GPU, or one per core on a CPU host (environment as for the coordinator)')
    .option('--count <n>', 'worker processes to start', (v) => parseInt(v, 10), 1)
    .action(async (o) => {
      if (o.count === 1) {
        await import(appEntry('@tensorfleet/worker'));
        return;
      }
      const procs = Array.from({ length: o.count }, (_, i) => {
        const gpu = process.env.FLEET_BACKEND === 'tensorflow' ? { CUDA_VISIBLE_DEVICES: String(i) } : {};
        return startProcess(`worker-${i}`, appEntry('@tensorfleet/worker'), { WORKER_ID: `${hostname()}-w${i}`, ...gpu }, process.cwd() + '/logs');
      });
      console.error(`started ${o.count} workers; logs in ./logs; Ctrl-C stops them`);
      const stop = () => Promise.all(procs.map((p) => p.stop())).then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      await Promise.all(procs.map((p) => p.exited));
    });
}
