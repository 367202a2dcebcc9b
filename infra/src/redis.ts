import { InfraError } from './errors';
import { startScriptService } from './service-process';
import type { RedisStartOptions, RunningRedis } from './types';

/**
 * A private redis-server on 127.0.0.1 (scripts/redis.sh): without persistence, or with
 * `appendfsync` an append-only file as a real deployment has it. restart() stops it (or
 * kills it, as a crash would) and starts it again on the same port and folder.
 */
export async function startRedis(opts: RedisStartOptions = {}): Promise<RunningRedis> {
  if (opts.appendfsync !== undefined && opts.appendfsync !== 'always' && opts.appendfsync !== 'everysec') {
    throw new InfraError('BAD_OPTIONS', `redis: appendfsync must be 'always' or 'everysec' (or unset for no persistence), got ${JSON.stringify(opts.appendfsync)}`);
  }
  const svc = await startScriptService('redis.sh', 'redis', opts, opts.appendfsync ? { REDIS_APPENDFSYNC: opts.appendfsync } : undefined);
  return {
    url: svc.url,
    port: svc.port,
    dir: svc.dir,
    persistence: opts.appendfsync ? `aof-${opts.appendfsync}` : 'none',
    stop: svc.stop,
    restart: async ({ crash = false, downMs = 0 } = {}) => {
      await svc.command(crash ? 'kill' : 'stop');
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      await svc.command('start');
    },
  };
}
