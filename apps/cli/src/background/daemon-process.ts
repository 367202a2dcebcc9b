import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A process started in its own session (it outlives the `fleet` command that started it and
 * gets no Ctrl-C from its terminal), output appended to LOG, PID in RUN/NAME.pid.
 */
export interface DaemonSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  logFile: string;
  runDir: string;
  /** A word of the process's command line or a VAR=value of its environment, so a recycled PID is never taken for it. */
  marker: Marker;
}

/** One marker, or several of which any will do (a process that rewrites its command line). */
export type Marker = string | string[];

export function pidFile(runDir: string, name: string): string {
  return join(runDir, `${name}.pid`);
}

export function startDaemon(spec: DaemonSpec): number {
  mkdirSync(spec.runDir, { recursive: true });
  const out = openSync(spec.logFile, 'a');
  try {
    const child = spawn(spec.command, spec.args, { detached: true, stdio: ['ignore', out, out], env: spec.env });
    if (child.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.command}); see ${spec.logFile}`);
    child.unref();
    writeFileSync(pidFile(spec.runDir, spec.name), `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

export function readPid(runDir: string, name: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile(runDir, name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Runs, is not a zombie, and (where /proc tells) is the process we started: `marker` is a word of its command line or an entry of its environment. */
export function isOurs(pid: number, marker: Marker): boolean {
  const markers = Array.isArray(marker) ? marker : [marker];
  const proc = `/proc/${pid}`;
  if (!existsSync('/proc/self')) {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
  try {
    if (/^State:\s*Z/m.test(readFileSync(`${proc}/status`, 'utf8'))) return false;
    // Whole words only: port 6379 must not match a process on 63790.
    const words = readFileSync(`${proc}/cmdline`, 'utf8').split(/[\0 ]+/);
    if (markers.some((m) => words.includes(m))) return true;
    const env = readFileSync(`${proc}/environ`, 'utf8').split('\0');
    return markers.some((m) => env.includes(m));
  } catch {
    return false;
  }
}

/** The recorded PID of NAME when that process still runs; null otherwise. */
export function livePid(runDir: string, name: string, marker: Marker): number | null {
  const pid = readPid(runDir, name);
  return pid !== null && isOurs(pid, marker) ? pid : null;
}

/** SIGTERM, then SIGKILL after `graceMs`; removes the PID file. Resolves once the process is gone. */
export async function stopDaemon(runDir: string, name: string, marker: Marker, graceMs: number): Promise<'stopped' | 'killed' | 'not running'> {
  const pid = livePid(runDir, name, marker);
  let outcome: 'stopped' | 'killed' | 'not running' = 'not running';
  if (pid !== null) {
    signal(pid, 'SIGTERM');
    outcome = (await waitGone(pid, marker, graceMs)) ? 'stopped' : 'killed';
    if (outcome === 'killed') {
      signal(pid, 'SIGKILL');
      if (!(await waitGone(pid, marker, 5000))) throw new Error(`${name} (pid ${pid}) did not stop even after SIGKILL`);
    }
  }
  rmSync(pidFile(runDir, name), { force: true });
  return outcome;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

async function waitGone(pid: number, marker: Marker, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isOurs(pid, marker)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}
