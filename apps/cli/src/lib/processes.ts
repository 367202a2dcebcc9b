import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/** Where the compiled entry point of a workspace app lives. */
export function appEntry(pkg: '@tensorfleet/coordinator' | '@tensorfleet/worker'): string {
  return join(dirname(require.resolve(`${pkg}/package.json`)), 'dist', 'main.js');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A child process whose output goes to a log file; `stop()` sends SIGTERM, then SIGKILL. */
export class ManagedProcess {
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(readonly name: string, readonly child: ChildProcess, readonly logFile: string) {
    this.exited = new Promise((resolve) => child.once('exit', (code) => {
      this.exitCode = code;
      resolve(code);
    }));
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  async stop(graceMs = 5000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }
}

export function startProcess(name: string, entry: string, env: NodeJS.ProcessEnv, logDir: string, args: string[] = []): ManagedProcess {
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const child = spawn(process.execPath, ['--enable-source-maps', entry, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  return new ManagedProcess(name, child, logFile);
}

/** Polls `probe` until it resolves true, the process dies, or the deadline passes. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs: number, proc?: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && !proc.running) throw new Error(`${proc.name} exited while waiting for ${what}; see ${proc.logFile}`);
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}${proc ? `; see ${proc.logFile}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
