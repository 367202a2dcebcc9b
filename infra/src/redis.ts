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
  if (opts.tls && !(opts.tls.certFile && opts.tls.keyFile && opts.tls.caFile)) {
    throw new InfraError('BAD_OPTIONS', 'redis: tls needs certFile, keyFile and caFile (tlsCertificates() makes them)');
  }
  if (opts.tls?.authClients !== undefined && !['no', 'yes', 'optional'].includes(opts.tls.authClients)) {
    throw new InfraError('BAD_OPTIONS', `redis: tls.authClients must be 'no', 'yes' or 'optional', got ${JSON.stringify(opts.tls.authClients)}`);
  }
  if (opts.acl && opts.acl.some((l) => typeof l !== 'string' || l.includes('\n'))) {
    throw new InfraError('BAD_OPTIONS', 'redis: acl must be a list of single-line ACL rules, e.g. "user fleet on >PASSWORD ~tf* &* +@all"');
  }
  const env: Record<string, string> = {};
  if (opts.appendfsync) env.REDIS_APPENDFSYNC = opts.appendfsync;
  if (opts.tls) {
    Object.assign(env, { REDIS_SERVER_TLS_CERT: opts.tls.certFile, REDIS_SERVER_TLS_KEY: opts.tls.keyFile, REDIS_SERVER_TLS_CA: opts.tls.caFile });
    if (opts.tls.authClients) env.REDIS_SERVER_TLS_AUTH_CLIENTS = opts.tls.authClients;
  }
  if (opts.acl?.length) env.REDIS_ACL = opts.acl.join('\n');
  const svc = await startScriptService('redis.sh', 'redis', opts, Object.keys(env).length ? env : undefined);
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
