export * from './schema';
export * from './job-spec.schema';
export * from './paths';
export * from './job-spec';
export * from './types';
export * from './api-views';
export * from './keys';
export * from './errors';
export { memberCurveKeys, type AssignmentCurve } from './curve-keys';
export { ControlPlane, newJobId, type ControlPlaneOptions, type JobGuard } from './control-plane';
export {
  explainRedisError,
  logRedisConnection,
  openRedis,
  redactRedisUrl,
  REDIS_TLS_ENV,
  redisOptions,
  redisTlsEnv,
  redisTlsFromEnv,
  waitForRedis,
  type RedisTls,
} from './redis-connection';
export { CLAIM_WORKERS, DISPATCH_IF_STATE, RELEASE_WORKERS, TRANSITION_JOB } from './lua';
