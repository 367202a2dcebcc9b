import { testServices } from '@tensorfleet/infra';
import { LocalCluster, type LocalClusterOptions } from '@tensorfleet/cli';

/**
 * A LocalCluster on the test run's private Redis and Swift (TF_TEST_REDIS_URL / TF_TEST_S3,
 * or private ones started here), under a key prefix of its own so tests never share state.
 */
export async function startTestCluster(opts: LocalClusterOptions & { name: string }): Promise<LocalCluster> {
  const services = await testServices();
  const s3 = services.s3;
  process.env.REDIS_URL = services.redisUrl;
  process.env.S3_ENDPOINT = `${s3.useSSL ? 'https' : 'http'}://${s3.endPoint}:${s3.port}`;
  process.env.S3_ACCESS_KEY = s3.accessKey;
  process.env.S3_SECRET_KEY = s3.secretKey;
  process.env.S3_REGION = s3.region;
  return LocalCluster.start({ ...opts, prefix: `tf-${opts.name}-${process.pid}` });
}

export function uniqueBucket(name: string): string {
  return `tf-${name}-${process.pid}-${Date.now().toString(36)}`.toLowerCase();
}
