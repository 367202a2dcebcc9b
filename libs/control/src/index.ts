export * from './job-spec.dto';
export * from './job-spec';
export * from './types';
export * from './keys';
export * from './errors';
export { memberCurveKeys, type AssignmentCurve } from './curve-keys';
export { ControlPlane, newJobId, type ControlPlaneOptions, type JobGuard } from './control-plane';
export { logRedisConnection } from './redis-connection';
export { CLAIM_WORKERS, DISPATCH_IF_STATE, RELEASE_WORKERS, TRANSITION_JOB } from './lua';
