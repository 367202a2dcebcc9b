import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InfraError } from './errors';
import type { StartOptions } from './types';

/** infra/scripts, from both src (ts-node) and the compiled dist. */
export const SCRIPTS_DIR = resolve(__dirname, '..', 'scripts');

/** Long enough for a first start that has to apt-get install Swift. */
const START_TIMEOUT_MS = 10 * 60_000;
const STOP_TIMEOUT_MS = 60_000;
/** What the scripts and the servers say when a port is in use. */
const PORT_TAKEN = /already taken|Address already in use|Could not bind/;

/** A port the OS considers free right now (another process may still take it before we do). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? done(port) : fail(new Error('no port from listen(0)'))));
    });
  });
}

function runScript(script: string, args: string[], timeout: number, env?: Record<string, string>): Promise<string> {
  return new Promise((done, fail) => {
    execFile('bash', [join(SCRIPTS_DIR, script), ...args], { timeout, maxBuffer: 1 << 20, env: env ? { ...process.env, ...env } : undefined }, (err, stdout, stderr) => {
      if (err) fail(Object.assign(err, { stderr: String(stderr).trim() }));
      else done(String(stdout).trim().split('\n').pop() ?? '');
    });
  });
}

/** Stops every service still running when the process exits (synchronously: 'exit' allows nothing else). */
const atExit = new Map<string, () => void>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const stop of atExit.values()) stop();
  });
  // A signal ends the process without 'exit' unless someone listens. Only when nobody else
  // handles it do we stop our services and re-raise it; an app's own handler exits itself.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      if (process.listenerCount(sig) > 1) return;
      for (const stop of atExit.values()) stop();
      atExit.clear();
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** The last lines of every log in DIR, for an error message (the folder may be removed next). */
function logTails(dir: string): string {
  if (!existsSync(dir)) return '';
  return readdirSync(dir)
    .filter((n) => n.endsWith('.log'))
    .map((n) => {
      const lines = readFileSync(join(dir, n), 'utf8').trim().split('\n').slice(-5).join('\n');
      return lines ? `\n--- ${n}\n${lines}` : '';
    })
    .join('');
}

export interface ScriptService {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
  /** Runs another command of the script on this instance's DIR (e.g. stop-proxy); resolves its last output line. */
  command(cmd: string): Promise<string>;
}

/**
 * Starts `script start DIR PORT`, retrying on another port when the one picked was taken
 * in between, and returns a stop() that is idempotent and also runs at process exit.
 */
export async function startScriptService(script: string, kind: string, opts: StartOptions = {}, env?: Record<string, string>): Promise<ScriptService> {
  if (opts.port !== undefined && (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535)) {
    throw new InfraError('BAD_OPTIONS', `${kind}: port must be an integer in 1..65535, got ${opts.port}`);
  }
  if (opts.label !== undefined && !/^[\w.-]*$/.test(opts.label)) {
    throw new InfraError('BAD_OPTIONS', `${kind}: label may hold only letters, digits, '.', '_' and '-', got '${opts.label}'`);
  }
  const progress = opts.onProgress ?? (() => undefined);
  const ownDir = opts.dir === undefined;
  const dir = ownDir ? mkdtempSync(join(tmpdir(), `tf-${kind}-${opts.label ? opts.label + '-' : ''}`)) : resolve(opts.dir!);
  if (!ownDir) mkdirSync(dir, { recursive: true });

  const t0 = Date.now();
  let url = '';
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = opts.port ?? (await freePort());
    try {
      url = await runScript(script, ['start', dir, String(port)], START_TIMEOUT_MS, env);
      break;
    } catch (err) {
      const stderr = (err as { stderr?: string }).stderr ?? String(err);
      const logs = logTails(dir);
      spawnSync('bash', [join(SCRIPTS_DIR, script), 'stop', dir], { timeout: STOP_TIMEOUT_MS, stdio: 'ignore' });
      // A port picked free was taken before the server bound it (the public one, or an
      // internal one such as Swift's account server or memcached): start again on new ports.
      if (attempt < 3 && PORT_TAKEN.test(stderr + logs) && (opts.port === undefined || !stderr.includes('already taken'))) {
        progress(`${kind}: a port was taken while starting; retrying on other ports`);
        if (ownDir) {
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir);
        }
        continue;
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      throw new InfraError('START_FAILED', `${kind} did not start${ownDir ? '' : ` in ${dir}`}: ${stderr}${logs}`);
    }
  }
  progress(`${kind} up at ${url} in ${Date.now() - t0} ms (dir ${dir})`);

  const stopSync = () => {
    spawnSync('bash', [join(SCRIPTS_DIR, script), 'stop', dir], { timeout: STOP_TIMEOUT_MS, stdio: 'ignore' });
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  const key = `${script}:${dir}`;
  hookExit();
  atExit.set(key, stopSync);

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      atExit.delete(key);
      try {
        await runScript(script, ['stop', dir], STOP_TIMEOUT_MS);
      } catch (err) {
        throw new InfraError('STOP_FAILED', `${kind} in ${dir} did not stop: ${(err as { stderr?: string }).stderr ?? err}`);
      }
      if (ownDir) rmSync(dir, { recursive: true, force: true });
      progress(`${kind} at ${url} stopped`);
    })();
    return stopping;
  };
  const command = async (cmd: string): Promise<string> => {
    if (stopping) throw new InfraError('BAD_OPTIONS', `${kind} at ${url} is stopped: '${cmd}' needs a running instance`);
    try {
      return await runScript(script, [cmd, dir, String(port)], START_TIMEOUT_MS, env);
    } catch (err) {
      throw new InfraError('START_FAILED', `${kind} in ${dir}: '${cmd}' failed: ${(err as { stderr?: string }).stderr ?? err}${logTails(dir)}`);
    }
  };
  return { url, port, dir, stop, command };
}
