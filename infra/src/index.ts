export { InfraError } from './errors';
export { redisUrlFromEnv, s3ConfigFromEnv } from './env';
export { startRedis } from './redis';
export { resolveServices, type ResolveOptions } from './resolve-services';
export { freePort, SCRIPTS_DIR } from './service-process';
export { startSwift } from './swift';
export { tlsCertificates } from './tls-certificates';
export { testId, testServices } from './test-services';
export {
  SWIFT_ACCESS_KEY,
  SWIFT_REGION,
  SWIFT_SECRET_KEY,
  type RedisStartOptions,
  type RunningRedis,
  type RunningService,
  type RunningSwift,
  type S3Config,
  type Services,
  type ServerTls,
  type StartOptions,
  type SwiftStartOptions,
  type TestCertificates,
} from './types';
