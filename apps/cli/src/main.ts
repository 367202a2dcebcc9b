import { Command } from 'commander';
import { registerDemo } from './commands/demo';
import { registerJobs } from './commands/jobs';
import { registerLogs } from './commands/logs';
import { registerModels } from './commands/models';
import { registerServices } from './commands/services';
import { registerBench } from './commands/bench';
import { registerData } from './commands/data';
import { registerPredict } from './commands/predict';
import { registerExport } from './commands/export';
import { registerCluster } from './commands/cluster';
import { currentClusterSettings } from './background/cluster-dir';

// The client commands' --coordinator default: FLEET_COORDINATOR, else the cluster `fleet up`
// started, else http://127.0.0.1:3000. Set before the commands register their options.
if (!process.env.FLEET_COORDINATOR) {
  const local = currentClusterSettings();
  if (local) process.env.FLEET_COORDINATOR = local.coordinatorUrl;
}

const program = new Command();
program
  .name('fleet')
  .description('TensorFleet: distributed ResNet and AlexNet training across many workers')
  .showHelpAfterError();
registerDemo(program);
registerJobs(program);
registerLogs(program);
registerModels(program);
registerServices(program);
registerBench(program);
registerData(program);
registerPredict(program);
registerExport(program);
registerCluster(program);

program.parseAsync(process.argv).catch((e) => {
  console.error(`fleet: ${e instanceof Error ? e.message : e}`);
  if (process.env.FLEET_DEBUG) console.error(e);
  process.exit(1);
});
