import * as os from 'node:os';
import * as path from 'node:path';
import { joinAll, RankProcess, runAll, spawnRanks } from '../testing/harness';
import { Wire } from '../types';
import { DEFAULT_MINOR_GC_BYTES } from '../young-gc';
import type { ThreadCpu } from './thread-cpu';

export type BenchTransport = 'ipc' | 'tcp';
export type BenchSecurity = 'plain' | 'curve';

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
  /** Raw point-to-point message sizes; the ceilings are the best of them. Default [256 KB, 1 MB, 4 MB]. */
  p2pMessageBytes?: number[];
  /** Bytes each raw point-to-point test moves per direction; default 1 GiB. */
  p2pBytes?: number;
  /** Young GC every this many bytes in the raw receivers, as the library does; 0 = never. Default 16 MB. */
  p2pMinorGcEveryBytes?: number;
  /**
   * Security of the ring's sockets: `plain` (no CURVE, FLEET_COLLECTIVE_CURVE=off) and/or
   * `curve` (CURVE on every endpoint, ipc too: FLEET_COLLECTIVE_CURVE=all). Default ['plain'].
   */
  security?: BenchSecurity[];
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
  /** CPU of both processes per MB (2^20 bytes) delivered, summed over directions, microseconds. */
  cpuUsPerMB: number;
  /** The same split by thread kind (null parts where /proc is missing). */
  cpuPerMB: RankCpu;
}

/** CPU one rank spends per call, microseconds, split by thread as ThreadCpu (null where /proc is missing). */
export type RankCpu = ThreadCpu;

export interface AllreduceRow {
  kind: 'allreduce';
  worldSize: number;
  transport: BenchTransport;
  /** ZeroMQ CURVE (encrypted, authenticated) or plain sockets. */
  security: BenchSecurity;
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
  /** The same split by thread. */
  cpu: RankCpu;
  /** CPU of all ranks per MB (2^20 bytes) delivered over all links, comparable with P2PRow.cpuUsPerMB. */
  cpuUsPerMB: number;
}

/** The best raw rate of each kind for one transport: what busbw is compared with. */
export interface Ceiling {
  transport: BenchTransport;
  /** One process sends, the other receives: the issue's "raw point-to-point throughput". */
  oneWay: P2PRow | null;
  /** Both processes send to each other at once: what each link of a 2-rank ring carries. */
  twoWay: P2PRow | null;
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

function env(transport: BenchTransport, security: BenchSecurity): (r: number) => Record<string, string> {
  // distinct host ids force tcp://127.0.0.1 between the ranks
  return (r: number) => ({ ...(transport === 'tcp' ? { FLEET_HOST_ID: `bench-host-${r}` } : {}), FLEET_COLLECTIVE_CURVE: security === 'curve' ? 'all' : 'off' });
}

async function closeAll(procs: RankProcess[]) {
  await Promise.all(procs.map((p) => p.exit()));
}

/**
 * Raw ZeroMQ PUSH -> PULL throughput between two fresh processes, with the library's socket
 * options and zero-copy sends: 'uni' one way, 'bidir' both ways at once.
 */
async function p2p(transport: BenchTransport, messageBytes: number, direction: 'uni' | 'bidir', totalBytes: number, minorGcEveryBytes: number): Promise<P2PRow> {
  const procs = await spawnRanks(RANK, 2);
  const must = (r: { ok: boolean; result?: any; error?: { message: string } }) => {
    if (!r.ok) throw new Error(r.error?.message);
    return r.result;
  };
  try {
    const count = Math.max(32, Math.ceil(totalBytes / messageBytes));
    const receivers = direction === 'uni' ? [1] : [0, 1];
    const eps = await Promise.all(receivers.map(async (r) => must(await procs[r].request({ cmd: 'run', scenario: 'rawBind', params: { transport, count, minorGcEveryBytes } }))));
    await Promise.all(procs.map(async (p) => must(await p.request({ cmd: 'run', scenario: 'cpuStart' }))));
    await Promise.all(receivers.map(async (r, k) => must(await procs[1 - r].request({ cmd: 'run', scenario: 'rawSend', params: { to: eps[k], bytes: messageBytes, count } }))));
    const got = await Promise.all(receivers.map(async (r) => must(await procs[r].request({ cmd: 'run', scenario: 'rawWait' }))));
    // every byte has arrived, so the senders' I/O threads are done too
    const cpu = await Promise.all(procs.map(async (p) => must(await p.request({ cmd: 'run', scenario: 'cpuStop' })) as RankCpu));
    const gbps = Math.min(...got.map((g: { bytes: number; seconds: number }) => g.bytes / g.seconds / 1e9));
    const mb = (receivers.length * count * messageBytes) / MB;
    const perMB = (k: keyof RankCpu) => (cpu[0][k] === null || cpu[1][k] === null ? null : (cpu[0][k]! + cpu[1][k]!) / mb);
    const cpuPerMB = { total: perMB('total')!, main: perMB('main'), zmq: perMB('zmq'), other: perMB('other') };
    return { kind: 'p2p', transport, messageBytes, direction, gbps, cpuUsPerMB: cpuPerMB.total, cpuPerMB };
  } finally {
    await closeAll(procs);
  }
}

/** The best one-way and two-way rates measured for `transport`. */
export function ceilings(r: AllreduceBenchResult, transport: BenchTransport): Ceiling {
  const best = (d: 'uni' | 'bidir') =>
    r.p2p.filter((p) => p.transport === transport && p.direction === d).reduce<P2PRow | null>((a, p) => (a && a.gbps >= p.gbps ? a : p), null);
  return { transport, oneWay: best('uni'), twoWay: best('bidir') };
}

/**
 * nccl-tests style: the raw p2p ceiling first, then all-reduce time, algbw and busbw per size
 * for each world size and transport. Each rank is its own process.
 */
export async function runAllreduceBench(opts: AllreduceBenchOptions = {}): Promise<AllreduceBenchResult> {
  const o = { worldSizes: [2, 4], transports: ['ipc', 'tcp'] as BenchTransport[], minBytes: 4096, maxBytes: 256 * MB, p2pMessageBytes: [MB / 4, MB, 4 * MB], p2pBytes: 2 ** 30, p2pMinorGcEveryBytes: DEFAULT_MINOR_GC_BYTES, wire: 'fp32' as Wire, security: ['plain'] as BenchSecurity[], ...opts };
  if (o.security.length === 0 || o.security.some((x) => x !== 'plain' && x !== 'curve')) throw new RangeError(`security must list plain and/or curve, got ${o.security.join(',')}`);
  if (!(o.minBytes >= 4 && o.maxBytes >= o.minBytes)) throw new RangeError('need 4 <= minBytes <= maxBytes');
  if (o.worldSizes.some((n) => !Number.isInteger(n) || n < 2)) throw new RangeError('world sizes must be integers >= 2');
  const result: AllreduceBenchResult = { p2p: [], rows: [], cpus: os.cpus().length };
  for (const t of o.transports) {
    for (const direction of ['uni', 'bidir'] as const) {
      for (const mb of o.p2pMessageBytes) {
        const row = await p2p(t, mb, direction, o.p2pBytes, o.p2pMinorGcEveryBytes);
        result.p2p.push(row);
        o.onRow?.(row);
      }
    }
  }
  for (const n of o.worldSizes) {
    for (const t of o.transports) {
     for (const security of o.security) {
      const procs = await spawnRanks(RANK, n, { env: env(t, security) });
      try {
        await joinAll(procs, `bench-${process.pid}-${n}-${t}-${security}`, 1, 120_000);
        const seen = procs[0].events.length;
        const replies = await runAll(procs, 'allreduce', () => ({ sizes: sizes(o.minBytes, o.maxBytes), iters: o.iters, warmup: 2, wire: o.wire }));
        const bad = replies.find((r) => !r.ok);
        if (bad) throw new Error(`bench rank failed: ${bad.error?.message}`);
        for (const r of procs[0].events.slice(seen) as { bytes: number; elements: number; iters: number; seconds: number; cpu: RankCpu }[]) {
          const algbw = r.bytes / r.seconds / 1e9;
          // every rank sends (and receives) 2(n-1)/n of the buffer per call
          const movedMB = (2 * (n - 1) * r.bytes) / MB;
          const row: AllreduceRow = {
            kind: 'allreduce',
            worldSize: n,
            transport: t,
            security,
            wire: o.wire,
            bytes: r.bytes,
            elements: r.elements,
            iters: r.iters,
            timeUs: r.seconds * 1e6,
            algbw,
            busbw: (algbw * 2 * (n - 1)) / n,
            cpuUs: r.cpu.total,
            cpu: r.cpu,
            cpuUsPerMB: movedMB > 0 ? (n * r.cpu.total) / movedMB : 0,
          };
          result.rows.push(row);
          o.onRow?.(row);
        }
      } finally {
        await closeAll(procs);
      }
     }
    }
  }
  return result;
}

function fmtBytes(b: number): string {
  return b >= MB ? `${b / MB} MB` : b >= 1024 ? `${b / 1024} KB` : `${b} B`;
}

const pct = (x: number, c: P2PRow | null) => (c && c.gbps > 0 ? `${((100 * x) / c.gbps).toFixed(0)}%` : '-');
const us = (x: number | null) => (x === null ? '-' : x.toFixed(0));

/** The table, as nccl-tests prints it, after the raw ceilings it is compared with. */
export function formatBench(r: AllreduceBenchResult): string {
  const lines: string[] = [];
  lines.push(`# raw ZeroMQ PUSH->PULL between two processes, the library's socket options and young GCs; ${r.cpus} CPUs`);
  lines.push(`#  transport  direction      message   GB/s per direction   CPU us per MB moved (both processes) = main + zmq io + other`);
  for (const p of r.p2p) {
    const c = p.cpuPerMB;
    lines.push(
      `   ${p.transport.padEnd(9)}  ${p.direction.padEnd(9)} ${fmtBytes(p.messageBytes).padStart(10)} ${p.gbps.toFixed(3).padStart(13)} ${p.cpuUsPerMB.toFixed(0).padStart(14)} = ${us(c.main).padStart(5)} + ${us(c.zmq).padStart(5)} + ${us(c.other).padStart(5)}`,
    );
  }
  const transports = [...new Set([...r.p2p.map((p) => p.transport), ...r.rows.map((x) => x.transport)])];
  for (const t of transports) {
    const c = ceilings(r, t);
    const desc = (p: P2PRow | null) => (p ? `${p.gbps.toFixed(3)} GB/s (${fmtBytes(p.messageBytes)} messages)` : 'not measured');
    lines.push(`# ceilings ${t}: one-way ${desc(c.oneWay)}; two-way ${desc(c.twoWay)} per direction`);
  }
  lines.push('# busbw is compared with both: "1-way" = one process sends, the other only receives;');
  lines.push('# "2-way" = both send to each other at once, which is what each link of the ring carries.');
  const groups = new Map<string, AllreduceRow[]>();
  for (const row of r.rows) {
    const k = `${row.worldSize}/${row.transport}/${row.security ?? 'plain'}`;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(row);
  }
  for (const rows of groups.values()) {
    const { worldSize: n, transport: t } = rows[0];
    const c = ceilings(r, t);
    const over = n > r.cpus ? ` (${n} processes on ${r.cpus} CPUs: oversubscribed)` : '';
    lines.push('');
    lines.push(`# all-reduce sum, ${rows[0].wire} on the wire, world size ${n}, ${t}${rows[0].security === 'curve' ? ' with CURVE' : ''}${over}`);
    lines.push(`#        size      count   iters     time(us)  algbw(GB/s)  busbw(GB/s)  /1-way  /2-way   cpu/rank(us) = main + zmq io + other   us/MB`);
    for (const x of rows) {
      lines.push(
        `  ${fmtBytes(x.bytes).padStart(10)} ${String(x.elements).padStart(10)} ${String(x.iters).padStart(7)} ${x.timeUs.toFixed(1).padStart(12)} ${x.algbw.toFixed(3).padStart(12)} ${x.busbw.toFixed(3).padStart(12)} ${pct(x.busbw, c.oneWay).padStart(7)} ${pct(x.busbw, c.twoWay).padStart(7)} ${us(x.cpu.total).padStart(14)} = ${us(x.cpu.main).padStart(6)} + ${us(x.cpu.zmq).padStart(6)} + ${us(x.cpu.other).padStart(5)} ${x.cpuUsPerMB.toFixed(0).padStart(7)}`,
      );
    }
  }
  lines.push(...curveCost(r.rows));
  return lines.join('\n');
}

/** Plain and CURVE busbw side by side, where both were measured. */
function curveCost(rows: AllreduceRow[]): string[] {
  const key = (x: AllreduceRow) => `${x.worldSize}/${x.transport}/${x.bytes}`;
  const curve = new Map(rows.filter((x) => x.security === 'curve').map((x) => [key(x), x]));
  const pairs = rows.filter((x) => x.security !== 'curve' && curve.has(key(x))).map((p) => [p, curve.get(key(p))!] as const);
  if (pairs.length === 0) return [];
  const out = ['', '# what CURVE costs: busbw plain vs CURVE (GB/s), and CPU per rank per call', '#  n  transport        size   plain   CURVE   CURVE/plain   cpu plain(us)   cpu CURVE(us)'];
  for (const [p, c] of pairs) {
    out.push(
      `  ${String(p.worldSize).padStart(2)}  ${p.transport.padEnd(9)} ${fmtBytes(p.bytes).padStart(10)} ${p.busbw.toFixed(3).padStart(7)} ${c.busbw.toFixed(3).padStart(7)} ${`${((100 * c.busbw) / p.busbw).toFixed(0)}%`.padStart(13)} ${us(p.cpu.total).padStart(15)} ${us(c.cpu.total).padStart(15)}`,
    );
  }
  return out;
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
    else if (k === '--p2p-bytes') o.p2pBytes = Number(v);
    else if (k === '--p2p-minor-gc-bytes') o.p2pMinorGcEveryBytes = Number(v);
    else if (k === '--curve') o.security = ['plain', 'curve'];
    else throw new Error(`unknown option ${a}; use --json --world-sizes=2,4 --transports=ipc,tcp --min-bytes=N --max-bytes=N --iters=N --wire=fp32|fp16|bf16 --p2p-bytes=N --p2p-minor-gc-bytes=N --curve`);
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
