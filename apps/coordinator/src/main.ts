// The coordinator process: configuration from the environment, then boot. See
// config/coordinator-config.ts for the variables.
import { coordinatorOptionsFromEnv } from './config/coordinator-config';
import { startCoordinator } from './bootstrap';

startCoordinator(coordinatorOptionsFromEnv()).then(
  (c) => console.log(`coordinator listening on ${c.url} (dashboard /, API docs /docs)`),
  (e: Error) => {
    console.error(`coordinator failed to start: ${e.message}`);
    process.exit(1);
  },
);
