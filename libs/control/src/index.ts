export * from './job-spec.dto';
export * from './job-spec';
export * from './types';
export * from './keys';
export * from './errors';
export { ControlPlane, newJobId, type ControlPlaneOptions } from './control-plane';
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
