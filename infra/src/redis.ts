import { startScriptService } from './service-process';
import type { RunningRedis, StartOptions } from './types';

/** A private redis-server on 127.0.0.1 without persistence (scripts/redis.sh). */
export async function startRedis(opts: StartOptions = {}): Promise<RunningRedis> {
  const svc = await startScriptService('redis.sh', 'redis', opts);
  return { url: svc.url, port: svc.port, dir: svc.dir, stop: svc.stop };
}
