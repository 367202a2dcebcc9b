import { randomBytes } from 'node:crypto';
import { InfraError } from './errors';
import { resolveServices } from './resolve-services';
import type { S3Config, Services } from './types';

let shared: Promise<Services> | null = null;

/**
 * Redis and S3 for a test: TF_TEST_REDIS_URL / TF_TEST_S3 (JSON S3Config) when the test
 * runner set them, otherwise private ones started once per process and stopped when it
 * exits. Every call returns the same services; give each test its own key prefix and
 * bucket (testId()).
 */
export function testServices(): Promise<Services> {
  shared ??= (async () => {
    const env: Record<string, string | undefined> = {};
    if (process.env.TF_TEST_REDIS_URL) env.REDIS_URL = process.env.TF_TEST_REDIS_URL;
    if (process.env.TF_TEST_S3) {
      const s3 = parseS3(process.env.TF_TEST_S3);
      env.S3_ENDPOINT = `${s3.useSSL ? 'https' : 'http'}://${s3.endPoint.includes(':') ? `[${s3.endPoint}]` : s3.endPoint}:${s3.port}`;
      env.S3_ACCESS_KEY = s3.accessKey;
      env.S3_SECRET_KEY = s3.secretKey;
      env.S3_REGION = s3.region;
    }
    return resolveServices({ env, label: 'spec' });
  })();
  const mine = shared;
  mine.catch(() => {
    if (shared === mine) shared = null;
  });
  return mine;
}

function parseS3(json: string): S3Config {
  let v: Partial<S3Config>;
  try {
    v = JSON.parse(json) as Partial<S3Config>;
  } catch {
    throw new InfraError('BAD_ENV', 'TF_TEST_S3 is not JSON: it must be an S3Config, as scripts/run-tests.mjs sets it');
  }
  for (const k of ['endPoint', 'accessKey', 'secretKey', 'region'] as const) {
    if (typeof v[k] !== 'string') throw new InfraError('BAD_ENV', `TF_TEST_S3 lacks the string '${k}'`);
  }
  if (typeof v.port !== 'number' || typeof v.useSSL !== 'boolean') throw new InfraError('BAD_ENV', "TF_TEST_S3 needs a numeric 'port' and a boolean 'useSSL'");
  return v as S3Config;
}

/** A fresh name usable as an S3 bucket and as a Redis key prefix: `tf-<label>-<hex>`, lower case, ≤ 63 chars. */
export function testId(label = 't'): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 't';
  return `tf-${clean}-${randomBytes(6).toString('hex')}`;
}
