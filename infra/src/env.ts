import { InfraError } from './errors';
import type { S3Config } from './types';

type Env = Record<string, string | undefined>;

/**
 * S3 settings from S3_ENDPOINT (http://host:port or https://host[:port]), S3_ACCESS_KEY,
 * S3_SECRET_KEY and optional S3_REGION (default us-east-1) and S3_CA_FILE (the CA of an https
 * endpoint, see S3Config.caFile). Null when S3_ENDPOINT is unset.
 */
export function s3ConfigFromEnv(env: Env = process.env): S3Config | null {
  const raw = env.S3_ENDPOINT?.trim();
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`);
  } catch {
    throw new InfraError('BAD_ENV', `S3_ENDPOINT='${raw}' is not a URL: use e.g. http://127.0.0.1:9000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InfraError('BAD_ENV', `S3_ENDPOINT='${raw}' must start with http:// or https://`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new InfraError('BAD_ENV', `S3_ENDPOINT='${raw}' must not have a path: requests are path-style, the bucket goes there`);
  }
  const accessKey = env.S3_ACCESS_KEY;
  const secretKey = env.S3_SECRET_KEY;
  if (!accessKey || !secretKey) {
    throw new InfraError('BAD_ENV', 'S3_ENDPOINT is set but S3_ACCESS_KEY or S3_SECRET_KEY is not: set both (or unset S3_ENDPOINT to start a private Swift)');
  }
  const useSSL = url.protocol === 'https:';
  const caFile = env.S3_CA_FILE?.trim();
  if (caFile && !useSSL) throw new InfraError('BAD_ENV', `S3_CA_FILE is set but S3_ENDPOINT='${raw}' is http://: use https:// to connect over TLS, or unset S3_CA_FILE`);
  return {
    endPoint: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
    accessKey,
    secretKey,
    region: env.S3_REGION?.trim() || 'us-east-1',
    ...(caFile ? { caFile } : {}),
  };
}

/** REDIS_URL when set and a redis:// or rediss:// URL; null when unset. */
export function redisUrlFromEnv(env: Env = process.env): string | null {
  const raw = env.REDIS_URL?.trim();
  if (!raw) return null;
  if (!/^rediss?:\/\/[^/]+/.test(raw)) {
    throw new InfraError('BAD_ENV', `REDIS_URL='${raw}' is not a redis URL: use e.g. redis://127.0.0.1:6379`);
  }
  return raw;
}
