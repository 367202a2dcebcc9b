import type { Redis } from 'ioredis';

/**
 * One line when a Redis connection drops and one when it is back (with how long it was
 * gone), instead of ioredis's "Unhandled error event" for every reconnect attempt. ioredis
 * reconnects by itself; with maxRetriesPerRequest: null the commands wait meanwhile, and
 * the Lua scripts go as EVAL, so a restarted server (empty script cache) runs them as before.
 */
export function logRedisConnection<R extends Redis>(redis: R, name: string, log: (line: string) => void): R {
  let downSince: number | null = null;
  let lastError = '';
  redis.on('error', (e: Error) => {
    lastError = e.message;
  });
  redis.on('reconnecting', () => {
    if (downSince !== null) return;
    downSince = Date.now();
    log(`Redis connection ${name} lost (${lastError || 'closed by the server'}); reconnecting, its commands wait meanwhile`);
  });
  redis.on('ready', () => {
    if (downSince === null) return;
    log(`Redis connection ${name} back after ${((Date.now() - downSince) / 1000).toFixed(1)} s`);
    downSince = null;
    lastError = '';
  });
  return redis;
}
