import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { curveMembers } from '../curve';
import { PeerAddress } from '../types';

export interface Reply {
  id: number;
  ok: boolean;
  result?: any;
  error?: { code?: string; ranks?: number[]; message: string; stack?: string };
  ms: number;
}

/** One rank's child process, driven by JSON-line commands. */
export class RankProcess {
  address!: PeerAddress;
  pid = 0;
  readonly events: unknown[] = [];
  private nextId = 1;
  private readonly waiting = new Map<number, (r: Reply) => void>();
  private exited: Promise<number | null>;
  private stderr = '';

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((res) => child.on('exit', (code) => res(code)));
    child.stderr!.on('data', (d) => (this.stderr = (this.stderr + d).slice(-4000)));
  }

  ready(): Promise<void> {
    return new Promise((resolve, reject) => {
      const rl = createInterface({ input: this.child.stdout! });
      const onExit = () => reject(new Error(`rank process exited before it was ready: ${this.stderr}`));
      this.child.once('exit', onExit);
      rl.on('line', (line) => {
        let m: any;
        try {
          m = JSON.parse(line);
        } catch {
          return;
        }
        if (m.ready) {
          this.address = m.address;
          this.pid = m.pid;
          this.child.off('exit', onExit);
          resolve();
        } else if (m.event !== undefined) this.events.push(m.event);
        else if (m.id) {
          this.waiting.get(m.id)?.(m);
          this.waiting.delete(m.id);
        }
      });
    });
  }

  request(msg: Record<string, unknown>): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, resolve);
      this.exited.then((code) => {
        if (this.waiting.delete(id)) reject(new Error(`rank process ${this.pid} exited (${code}) during ${JSON.stringify(msg).slice(0, 200)}: ${this.stderr}`));
      });
      this.child.stdin!.write(JSON.stringify({ ...msg, id }) + '\n');
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.request({ cmd: 'exit' }).catch(() => undefined);
    await this.exited;
    clearTimeout(t);
  }
}

export interface SpawnOptions {
  /** Extra environment per rank (e.g. FLEET_HOST_ID to force tcp). */
  env?: (rank: number) => Record<string, string>;
  execArgv?: string[];
  /** Command prefix per rank, e.g. `ip netns exec <host>` to run the rank inside a simulated host. */
  prefix?: (rank: number) => string[];
}

/** Spawns `n` processes of `script` and waits until each has bound its node. */
export async function spawnRanks(script: string, n: number, opts: SpawnOptions = {}): Promise<RankProcess[]> {
  const procs = Array.from({ length: n }, (_, r) => {
    const [cmd, ...args] = [...(opts.prefix?.(r) ?? []), process.execPath, ...(opts.execArgv ?? []), script];
    const child = spawn(cmd, args, {
      env: { ...process.env, ...(opts.env?.(r) ?? {}) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new RankProcess(child);
  });
  try {
    await Promise.all(procs.map((p) => p.ready()));
  } catch (err) {
    procs.forEach((p) => p.child.kill('SIGKILL'));
    throw err;
  }
  return procs;
}

/** Joins `procs` (in rank order) into one communicator, with fresh CURVE keys for the epoch as the coordinator hands out. */
export async function joinAll(procs: RankProcess[], runId: string, epoch: number, timeoutMs = 20_000, extra: Record<string, unknown> = {}): Promise<void> {
  const peers = procs.map((p) => p.address);
  const curve = curveMembers(procs.length);
  const replies = await Promise.all(
    procs.map((p, rank) => p.request({ cmd: 'join', join: { runId, epoch, rank, worldSize: procs.length, peers, timeoutMs, curve: curve[rank], ...extra } })),
  );
  const bad = replies.find((r) => !r.ok);
  if (bad) throw new Error(`join failed: ${bad.error?.message}`);
}

export async function runAll(procs: RankProcess[], scenario: string, params: (rank: number) => unknown = () => ({})): Promise<Reply[]> {
  return Promise.all(procs.map((p, r) => p.request({ cmd: 'run', scenario, params: params(r) })));
}
