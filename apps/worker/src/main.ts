import { workerConfigFromEnv } from './config';
import { FleetWorker } from './fleet-worker';

/** Boots one worker process. Configuration comes from the environment (see config.ts). */
async function main(): Promise<void> {
  const worker = new FleetWorker(workerConfigFromEnv());
  const shutdown = (signal: string) => {
    console.log(`[worker] ${signal}: unregistering and exiting`);
    worker.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await worker.start();
  await worker.serve();
  await worker.close();
  process.exit(0);
}

main().catch((e) => {
  console.error(`[worker] fatal: ${e instanceof Error ? e.stack : e}`);
  process.exit(1);
});
