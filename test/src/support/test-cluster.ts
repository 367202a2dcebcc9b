import { testServices } from '@tensorfleet/infra';
import { LocalCluster, serviceEnv, type LocalClusterOptions } from '@tensorfleet/cli';

/**
 * A LocalCluster on the test run's private Redis and Swift (TF_TEST_REDIS_URL / TF_TEST_S3,
 * or private ones started here), under a key prefix of its own so tests never share state.
 */
export async function startTestCluster(opts: LocalClusterOptions & { name: string }): Promise<LocalCluster> {
  const services = await testServices();
  const prefix = `tf-${opts.name}-${process.pid}`;
  // LocalCluster resolves Redis and S3 from the environment, as a user's shell would set it.
  Object.assign(process.env, serviceEnv(services.redisUrl, services.s3, prefix));
  return LocalCluster.start({ ...opts, prefix });
}

export function uniqueBucket(name: string): string {
  return `tf-${name}-${process.pid}-${Date.now().toString(36)}`.toLowerCase();
}
