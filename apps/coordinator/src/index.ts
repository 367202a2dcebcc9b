export { startCoordinator, type RunningCoordinator } from './bootstrap';
export {
  coordinatorOptionsFromEnv, resolveCoordinatorConfig, CoordinatorConfigError,
  type CoordinatorOptions, type CoordinatorConfig,
} from './config/coordinator-config';
export { GangScheduler, type GangSchedulerOptions, type RunOutcome } from './scheduler/gang-scheduler';
export { queueJobId } from './scheduler/scheduler.service';
