import { redisUrlFromEnv, s3ConfigFromEnv } from './env';
import { startRedis } from './redis';
import { startSwift } from './swift';
import type { RunningService, S3Config, Services, StartOptions } from './types';

export interface ResolveOptions {
  /** Where to read REDIS_URL and S3_*. Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Goes into the private services' temp folder names. Default: none. */
  label?: string;
  /** Progress lines from starting/stopping private services. Default: silent. */
  onProgress?: StartOptions['onProgress'];
}

/**
 * Redis and S3 from the environment (REDIS_URL; S3_ENDPOINT + S3_ACCESS_KEY + S3_SECRET_KEY
 * [+ S3_REGION]), otherwise private ones started here. stop() stops only those.
 */
export async function resolveServices(opts: ResolveOptions = {}): Promise<Services> {
  const env = opts.env ?? process.env;
  const started: RunningService[] = [];
  const stop = async () => {
    const all = started.splice(0);
    await Promise.all(all.map((s) => s.stop()));
  };
  try {
    let redisUrl = redisUrlFromEnv(env);
    let s3: S3Config | null = s3ConfigFromEnv(env);
    const startOpts = { label: opts.label, onProgress: opts.onProgress };
    const [redis, swift] = await Promise.all([
      redisUrl ? null : startRedis(startOpts).then((r) => (started.push(r), r)),
      s3 ? null : startSwift(startOpts).then((s) => (started.push(s), s)),
    ]);
    redisUrl ??= redis!.url;
    s3 ??= swift!.config;
    return { redisUrl, s3, stop };
  } catch (err) {
    await stop().catch(() => undefined);
    throw err;
  }
}
