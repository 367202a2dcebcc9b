import * as os from 'node:os';
import * as path from 'node:path';
import { joinAll, RankProcess, runAll, spawnRanks } from '../testing/harness';
import { Wire } from '../types';

export type BenchTransport = 'ipc' | 'tcp';

export interface AllreduceBenchOptions {
  /** Default [2, 4]. */
  worldSizes?: number[];
  /** Default ['ipc', 'tcp']. */
  transports?: BenchTransport[];
  /** Default 4 KB. */
  minBytes?: number;
  /** Default 256 MB. */
  maxBytes?: number;
  /** Timed iterations per size; default between 3 and 50, about 1 GB of buffer per size. */
  iters?: number;
  /** Encoding on the wire; default 'fp32'. */
  wire?: Wire;
  /** Raw point-to-point message sizes; default [1 MB, 4 MB]. */
  p2pMessageBytes?: number[];
  /** Called as each row is measured (p2p rows first). */
  onRow?: (row: P2PRow | AllreduceRow) => void;
}

export interface P2PRow {
  kind: 'p2p';
  transport: BenchTransport;
  messageBytes: number;
  /** 'uni': one process sends, the other receives (the ceiling). 'bidir': both at once, as a ring's links do. */
  direction: 'uni' | 'bidir';
  /** GB/s (1e9 bytes per second) per direction. */
  gbps: number;
}

export interface AllreduceRow {
  kind: 'allreduce';
  worldSize: number;
  transport: BenchTransport;
  wire: Wire;
  /** fp32 bytes reduced (what the caller passes), whatever the wire encoding. */
  bytes: number;
  elements: number;
  iters: number;
  /** Mean time of one all-reduce, slowest rank, microseconds. */
  timeUs: number;
  /** bytes / time, GB/s. */
  algbw: number;
  /** algbw * 2(n-1)/n: what each link carries, comparable to the p2p ceiling. */
  busbw: number;
  /** CPU time (all threads and the kernel) one rank spends per call, mean over ranks, microseconds. */
  cpuUs: number;
}

export interface AllreduceBenchResult {
  p2p: P2PRow[];
  rows: AllreduceRow[];
  cpus: number;
}

const RANK = path.join(__dirname, 'bench-rank.js');
const MB = 1 << 20;

function sizes(min: number, max: number): number[] {
  const out: number[] = [];
  for (let b = min; b <= max; b *= 4) out.push(b);
  if (out[out.length - 1] !== max) out.push(max);
  return out;
}

function env(transport: BenchTransport): (r: number) => Record<string, string> {
  // distinct host ids force tcp://127.0.0.1 between the ranks
  return (r: number) => (transport === 'tcp' ? { FLEET_HOST_ID: `bench-host-${r}` } : ({} as Record<string, string>));
}

async function closeAll(procs: RankProcess[]) {
  await Promise.all(procs.map((p) => p.exit()));
}

/** Raw ZeroMQ PUSH -> PULL throughput between two processes: the ceiling for busbw. */
async function p2p(transport: BenchTransport, messageBytes: number, direction: 'uni' | 'bidir'): Promise<P2PRow> {
  const procs = await spawnRanks(RANK, 2);
  const must = (r: { ok: boolean; result?: any; error?: { message: string } }) => {
    if (!r.ok) throw new Error(r.error?.message);
    return r.result;
  };
  try {
    const count = Math.max(32, Math.ceil((2 * 2 ** 30) / messageBytes));
    const receivers = direction === 'uni' ? [1] : [0, 1];
    const eps = await Promise.all(receivers.map(async (r) => must(await procs[r].request({ cmd: 'run', scenario: 'rawBind', params: { transport, count } }))));
    await Promise.all(receivers.map(async (r, k) => must(await procs[1 - r].request({ cmd: 'run', scenario: 'rawSend', params: { to: eps[k], bytes: messageBytes, count } }))));
    const got = await Promise.all(receivers.map(async (r) => must(await procs[r].request({ cmd: 'run', scenario: 'rawWait' }))));
    const gbps = Math.min(...got.map((g: { bytes: number; seconds: number }) => g.bytes / g.seconds / 1e9));
    return { kind: 'p2p', transport, messageBytes, direction, gbps };
  } finally {
    await closeAll(procs);
  }
}

/**
 * nccl-tests style: the raw p2p ceiling first, then all-reduce time, algbw and busbw per size
 * for each world size and transport. Each rank is its own process.
 */
export async function runAllreduceBench(opts: AllreduceBenchOptions = {}): Promise<AllreduceBenchResult> {
  const o = { worldSizes: [2, 4], transports: ['ipc', 'tcp'] as BenchTransport[], minBytes: 4096, maxBytes: 256 * MB, p2pMessageBytes: [MB, 4 * MB], wire: 'fp32' as Wire, ...opts };
  if (!(o.minBytes >= 4 && o.maxBytes >= o.minBytes)) throw new RangeError('need 4 <= minBytes <= maxBytes');
  if (o.worldSizes.some((n) => !Number.isInteger(n) || n < 2)) throw new RangeError('world sizes must be integers >= 2');
  const result: AllreduceBenchResult = { p2p: [], rows: [], cpus: os.cpus().length };
  for (const t of o.transports) {
    for (const direction of ['uni', 'bidir'] as const) {
      for (const mb of o.p2pMessageBytes) {
        const row = await p2p(t, mb, direction);
        result.p2p.push(row);
        o.onRow?.(row);
      }
    }
  }
  for (const n of o.worldSizes) {
    for (const t of o.transports) {
      const procs = await spawnRanks(RANK, n, { env: env(t) });
      try {
        await joinAll(procs, `bench-${process.pid}-${n}-${t}`, 1, 120_000);
        const seen = procs[0].events.length;
        const replies = await runAll(procs, 'allreduce', () => ({ sizes: sizes(o.minBytes, o.maxBytes), iters: o.iters, warmup: 2, wire: o.wire }));
        const bad = replies.find((r) => !r.ok);
        if (bad) throw new Error(`bench rank failed: ${bad.error?.message}`);
        for (const r of procs[0].events.slice(seen) as { bytes: number; elements: number; iters: number; seconds: number; cpuSeconds: number }[]) {
          const algbw = r.bytes / r.seconds / 1e9;
          const row: AllreduceRow = { kind: 'allreduce', worldSize: n, transport: t, wire: o.wire, bytes: r.bytes, elements: r.elements, iters: r.iters, timeUs: r.seconds * 1e6, algbw, busbw: (algbw * 2 * (n - 1)) / n, cpuUs: r.cpuSeconds * 1e6 };
          result.rows.push(row);
          o.onRow?.(row);
        }
      } finally {
        await closeAll(procs);
      }
    }
  }
  return result;
}

function fmtBytes(b: number): string {
  return b >= MB ? `${b / MB} MB` : b >= 1024 ? `${b / 1024} KB` : `${b} B`;
}

/** The table, as nccl-tests prints it. */
export function formatBench(r: AllreduceBenchResult): string {
  const lines: string[] = [];
  lines.push(`# raw ZeroMQ PUSH->PULL between two processes (the ceiling); ${r.cpus} CPUs`);
  lines.push(`#  transport  direction      message   GB/s per direction`);
  for (const p of r.p2p) lines.push(`   ${p.transport.padEnd(9)}  ${p.direction.padEnd(9)} ${fmtBytes(p.messageBytes).padStart(10)} ${p.gbps.toFixed(3).padStart(9)}`);
  const ceiling = (t: BenchTransport) => Math.max(0, ...r.p2p.filter((p) => p.transport === t && p.direction === 'uni').map((p) => p.gbps));
  const groups = new Map<string, AllreduceRow[]>();
  for (const row of r.rows) {
    const k = `${row.worldSize}/${row.transport}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(row);
  }
  for (const rows of groups.values()) {
    const { worldSize: n, transport: t } = rows[0];
    const over = n > r.cpus ? ` (${n} processes on ${r.cpus} CPUs: oversubscribed)` : '';
    lines.push('');
    lines.push(`# all-reduce sum, ${rows[0].wire} on the wire, world size ${n}, ${t}${over}`);
    lines.push(`#        size      count   iters     time(us)  algbw(GB/s)  busbw(GB/s)  busbw/ceiling  cpu/rank(us)`);
    for (const x of rows) {
      const frac = ceiling(t) ? `${((100 * x.busbw) / ceiling(t)).toFixed(0)}%` : '-';
      lines.push(
        `  ${fmtBytes(x.bytes).padStart(10)} ${String(x.elements).padStart(10)} ${String(x.iters).padStart(7)} ${x.timeUs.toFixed(1).padStart(12)} ${x.algbw.toFixed(3).padStart(12)} ${x.busbw.toFixed(3).padStart(12)} ${frac.padStart(14)} ${x.cpuUs.toFixed(0).padStart(13)}`,
      );
    }
  }
  return lines.join('\n');
}

function parseArgs(argv: string[]): AllreduceBenchOptions & { json: boolean } {
  const o: AllreduceBenchOptions & { json: boolean } = { json: false };
  for (const a of argv) {
    const [k, v] = a.split('=');
    if (k === '--json') o.json = true;
    else if (k === '--world-sizes') o.worldSizes = v.split(',').map(Number);
    else if (k === '--transports') o.transports = v.split(',') as BenchTransport[];
    else if (k === '--min-bytes') o.minBytes = Number(v);
    else if (k === '--max-bytes') o.maxBytes = Number(v);
    else if (k === '--iters') o.iters = Number(v);
    else if (k === '--wire') o.wire = v as Wire;
    else throw new Error(`unknown option ${a}; use --json --world-sizes=2,4 --transports=ipc,tcp --min-bytes=N --max-bytes=N --iters=N --wire=fp32|fp16|bf16`);
  }
  return o;
}

if (require.main === module) {
  const o = parseArgs(process.argv.slice(2));
  runAllreduceBench(o).then(
    (r) => process.stdout.write((o.json ? JSON.stringify(r, null, 2) : formatBench(r)) + '\n'),
    (err) => {
      process.stderr.write(`${err instanceof Error ? err.stack : err}\n`);
      process.exit(1);
    },
  );
}
