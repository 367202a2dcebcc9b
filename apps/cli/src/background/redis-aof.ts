import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCRIPTS_DIR } from '@tensorfleet/infra';
import { livePid, startDaemon, stopDaemon } from './daemon-process';
import type { ClusterPaths } from './cluster-dir';

/**
 * redis-server with append-only-file persistence in `paths.redisData`, so that job records,
 * events and the checkpoint catalogue survive `fleet down` / `fleet up`. fsync every second:
 * a crash of the machine loses at most the last second; a `fleet down` (SIGTERM) loses nothing,
 * Redis writes the file out before it exits.
 * The password of Redis's default user comes from `paths.redisConf` (written by
 * writeRedisPassword, mode 0600), so that it never shows in a process list.
 */
export async function startRedisAof(paths: ClusterPaths, port: number, password: string, tls?: RedisServerTls): Promise<number> {
  ensureRedisInstalled(paths);
  mkdirSync(paths.redisData, { recursive: true });
  const pid = startDaemon({
    name: 'redis',
    command: 'redis-server',
    args: [
      paths.redisConf,
      '--bind', '127.0.0.1',
      // TLS only: the plain port is off.
      ...(tls ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile, '--tls-ca-cert-file', tls.caFile, '--tls-auth-clients', 'no'] : ['--port', String(port)]),
      '--dir', paths.redisData,
      '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '',
      '--protected-mode', 'no', '--daemonize', 'no',
    ],
    env: process.env,
    logFile: join(paths.logs, 'redis.log'),
    runDir: paths.run,
    marker: redisMarker(port),
  });
  // A large append-only file takes a while to load; Redis answers -LOADING until then.
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (await ping(port, password, tls?.caFile)) return pid;
    if (!livePid(paths.run, 'redis', redisMarker(port))) throw new Error(`redis-server exited while starting; see ${join(paths.logs, 'redis.log')}`);
    if (Date.now() > deadline) throw new Error(`redis-server did not answer PING within 120 s; see ${join(paths.logs, 'redis.log')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function stopRedisAof(paths: ClusterPaths, port: number): ReturnType<typeof stopDaemon> {
  // Writing out a large append-only file takes a moment: a generous grace before SIGKILL.
  return stopDaemon(paths.run, 'redis', redisMarker(port), 30_000);
}

/**
 * redis-server rewrites its command line to "redis-server 127.0.0.1:PORT" once it has read its
 * arguments; until then they read "... --port PORT ...".
 */
export function redisMarker(port: number): string[] {
  return [`127.0.0.1:${port}`, String(port)];
}

export interface RedisServerTls { certFile: string; keyFile: string; caFile: string }

/** True when Redis on `port` takes `password` and answers PING with PONG (not -LOADING, -NOAUTH); over TLS with `caFile`. */
export function ping(port: number, password: string, caFile?: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = caFile ? connectTls({ host: '127.0.0.1', port, ca: readFileSync(caFile) }) : connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    // AUTH then PING, as RESP arrays: two replies, +OK and +PONG.
    const auth = `*2\r\n$4\r\nAUTH\r\n$${Buffer.byteLength(password)}\r\n${password}\r\n`;
    sock.once(caFile ? 'secureConnect' : 'connect', () => sock.write(`${auth}*1\r\n$4\r\nPING\r\n`));
    sock.on('data', (d) => {
      reply += d.toString();
      const lines = reply.split('\r\n');
      if (lines.length > 2) done(lines[0] === '+OK' && lines[1] === '+PONG');
    });
  });
}

/** apt-get installs redis-server when missing, as `fleet demo` does (infra/scripts/lib.sh). */
function ensureRedisInstalled(paths: ClusterPaths): void {
  mkdirSync(paths.logs, { recursive: true });
  try {
    execFileSync('bash', ['-c', 'source "$1/lib.sh"; DIR=$2; ensure_packages redis-server:redis-server', 'redis', SCRIPTS_DIR, paths.logs], {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 10 * 60_000,
    });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`redis-server is not installed and could not be installed: ${stderr || (e as Error).message}. Install it (Debian: apt-get install redis-server) and run \`fleet up\` again`);
  }
}
