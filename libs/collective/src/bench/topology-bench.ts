import * as os from 'node:os';
import * as path from 'node:path';
import { ringsOnBusiestRail } from '../cost-model/cost-model';
import { AllReduceAlgorithm } from '../hierarchical';
import { joinAll, runAll, spawnRanks } from '../testing/harness';
import { hostPlacement, railTxBytes, withHostNetwork } from '../testing/netns';

/**
 * Flat ring against hierarchical all-reduce on simulated hosts: H network namespaces of L
 * ranks each, every host's links shaped with tc tbf to `rateMbit` (both directions). With
 * `rails` > 1 each host has that many links, local rank l binding on rail l mod rails
 * (netns.ts, hostPlacement).
 */
export interface TopologyBenchOptions {
  hosts: number;
  localRanks: number;
  /** Inter-host link rate, Mbit/s (tbf). Default 1000. */
  rateMbit?: number;
  /** Links per host, each at `rateMbit` (default 1; = localRanks for one link per local rank). */
  rails?: number;
  /** Buffer sizes in bytes. Default 4, 16 and 64 MB. */
  sizes?: number[];
  /** Timed calls per size (default 5) after one warm-up. */
  iters?: number;
  /** Measurements per algorithm, interleaved ring/hierarchical; rows report each round. Default 2. */
  rounds?: number;
  /** Pipeline chunk of the hierarchical all-reduce, bytes. Default its own (DEFAULT_CHUNK_BYTES). */
  chunkBytes?: number;
  onRow?: (row: TopologyRow) => void;
}

export interface TopologyRow {
  algorithm: AllReduceAlgorithm;
  topology: string;
  round: number;
  bytes: number;
  timeUs: number;
  algbw: number;
  /** algbw * 2(n-1)/n, nccl-tests' convention for both algorithms, so they compare directly. */
  busbw: number;
  /** Bytes each host sends over its busiest link per call (interHostBytesPerByte) / time, as a share of the shaped rate. */
  linkShare: number;
  /**
   * Measured, per rail: the most any host sent on it per call (its veth's counter over the
   * timed and warm-up calls, frames with headers) / time, as a share of the shaped rate.
   */
  railShare: number[];
  /**
   * CPU the n rank processes spent per call / its time, in cores (the machine has
   * os.cpus().length): near that count, the CPU and not the link bounds the call.
   * `mainCores` is the JavaScript threads' part, `zmqCores` ZeroMQ's I/O threads'.
   */
  cpuCores: number;
  mainCores: number | null;
  zmqCores: number | null;
  rateMbit: number;
  /** Links per host. Absent in rows from before rails (= 1). */
  rails: number;
  /** The most hierarchical/ring can be when both keep the busiest link full (idealSpeedup). */
  ideal: number;
}

const RANK = path.join(__dirname, 'bench-rank.js');

/**
 * Fraction of the buffer one host sends per call over its busiest link, hosts contiguous in
 * the ring, local rank l on rail l mod rails.
 */
export function interHostBytesPerByte(algorithm: AllReduceAlgorithm, hosts: number, localRanks: number, rails = 1): number {
  const n = hosts * localRanks;
  // flat ring: one ring edge leaves each host, into local rank 0 of the next host (so on
  // rail 0 whatever the rails), and carries 2(n-1)/n of the buffer;
  // hierarchical: L rings of H ranks over 1/L of the buffer each, 2(H-1)/H of it, the ring of
  // local rank l on rail l mod rails, so the busiest rail carries ceil(L/rails) of them
  if (algorithm === 'ring') return (2 * (n - 1)) / n;
  return ((2 * (hosts - 1)) / hosts) * (ringsOnBusiestRail(localRanks, rails) / localRanks);
}

/**
 * Bound on hierarchical/ring busbw (= time ratio) when the host links are the bottleneck and
 * both algorithms keep the busiest one full: the ring's bytes on it over the hierarchical's,
 * (HL-1)/(L(H-1)) with one link per host. 2(H-1)/H per host is the least any all-reduce of
 * fp32 can send: host h must receive the other hosts' share of every element it ends with,
 * and the links are full duplex, so using both directions (both algorithms already do) does
 * not change it. With a link per local rank the hierarchical rings spread over L links while
 * the flat ring still crosses on one: L times higher, (HL-1)/(H-1).
 */
export function idealSpeedup(hosts: number, localRanks: number, rails = 1): number {
  return interHostBytesPerByte('ring', hosts, localRanks, rails) / interHostBytesPerByte('hierarchical', hosts, localRanks, rails);
}

export async function runTopologyBench(opts: TopologyBenchOptions): Promise<TopologyRow[]> {
  const o = { rateMbit: 1000, rails: 1, sizes: [4, 16, 64].map((m) => m << 20), iters: 5, rounds: 2, ...opts };
  for (const k of ['hosts', 'localRanks', 'iters', 'rounds', 'rails'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.hosts < 2) throw new RangeError(`hosts must be at least 2 to compare across hosts, got ${o.hosts}`);
  if (o.rails > o.localRanks) throw new RangeError(`rails must be at most the ranks per host (${o.localRanks}): a rail without a rank carries nothing; got ${o.rails}`);
  const n = o.hosts * o.localRanks;
  const topology = `${o.hosts}x${o.localRanks}`;
  const rows: TopologyRow[] = [];
  const warmup = 1;
  await withHostNetwork({ hosts: o.hosts, rateMbit: o.rateMbit, rails: o.rails, tag: `b${process.pid % 10000}` }, async (net) => {
    const procs = await spawnRanks(RANK, n, hostPlacement(net, o.localRanks));
    try {
      await joinAll(procs, `topo-${process.pid}`, 1, 120_000);
      const hosts = procs.map((p) => p.address.hostId);
      for (let round = 1; round <= o.rounds; round++) {
        for (const algorithm of ['ring', 'hierarchical'] as const) {
          // one size per call, so the rails' byte counters cover that size's calls only
          for (const bytes of o.sizes) {
            const seen = procs[0].events.length;
            const tx0 = railTxBytes(net);
            const replies = await runAll(procs, 'allreduce', () => ({ sizes: [bytes], iters: o.iters, warmup, hosts, algorithm, chunkBytes: o.chunkBytes }));
            const tx1 = railTxBytes(net);
            const bad = replies.find((r) => !r.ok);
            if (bad) throw new Error(`bench rank failed (${algorithm}): ${bad.error?.message}`);
            const e = procs[0].events[seen] as { bytes: number; seconds: number; cpu: { total: number; main: number | null; zmq: number | null } };
            // e.cpu: the mean over ranks of each rank's CPU per call, µs
            const cores = (us: number | null) => (us === null ? null : (us * n) / 1e6 / e.seconds);
            const algbw = e.bytes / e.seconds / 1e9;
            const linkBytesPerSec = (interHostBytesPerByte(algorithm, o.hosts, o.localRanks, o.rails) * e.bytes) / e.seconds;
            const perCall = (h: number, k: number) => (tx1[h][k] - tx0[h][k]) / (o.iters + warmup);
            const railShare = Array.from({ length: o.rails }, (_, k) => Math.max(...tx0.map((_h, h) => perCall(h, k))) / e.seconds * 8 / (o.rateMbit * 1e6));
            const row: TopologyRow = {
              algorithm, topology, round, bytes: e.bytes, timeUs: e.seconds * 1e6, algbw,
              busbw: (algbw * 2 * (n - 1)) / n, linkShare: (linkBytesPerSec * 8) / (o.rateMbit * 1e6), railShare,
              cpuCores: cores(e.cpu.total)!, mainCores: cores(e.cpu.main), zmqCores: cores(e.cpu.zmq), rateMbit: o.rateMbit, rails: o.rails,
              ideal: idealSpeedup(o.hosts, o.localRanks, o.rails),
            };
            rows.push(row);
            o.onRow?.(row);
          }
        }
      }
    } finally {
      await Promise.all(procs.map((p) => p.exit()));
    }
  });
  return rows;
}

/** Side-by-side table: per size and round, ring and hierarchical busbw, their ratio and link use. */
export function formatTopologyBench(rows: TopologyRow[]): string {
  if (rows.length === 0) return '# no rows';
  const rails = rows[0].rails ?? 1;
  const lines = [
    `# all-reduce sum fp32, ${rows[0].topology} (hosts x ranks per host) on network namespaces, ${rails} inter-host link(s) per host (rails), each tc tbf ${rows[0].rateMbit} Mbit/s`,
    '# busbw = algbw * 2(n-1)/n for both; link = bytes each host sends across its busiest link per second / the shaped rate (from the algorithm)',
    '# rails = measured: most any host sent on rail 0, 1, ... per second (veth counters, frames with headers) / the shaped rate',
    `# cpu = cores the ${rows[0].topology} rank processes kept busy during the call (thread CPU / time; this machine has ${os.cpus().length})`,
    `# ideal = the most hier/ring can be with the busiest links full: ring bytes on it / hierarchical's = ${rows[0].ideal.toFixed(2)}x here`,
    '#    size  round   ring time(ms)  busbw(GB/s)   link     rails  cpu    hier time(ms)  busbw(GB/s)   link     rails  cpu    hier/ring   ideal',
  ];
  const railCol = (r: TopologyRow) => (r.railShare ?? []).map((x) => (100 * x).toFixed(0)).join('/').padStart(9);
  for (const ring of rows.filter((r) => r.algorithm === 'ring')) {
    const hier = rows.find((r) => r.algorithm === 'hierarchical' && r.bytes === ring.bytes && r.round === ring.round);
    if (!hier) continue;
    const f = (r: TopologyRow) => `${(r.timeUs / 1000).toFixed(1).padStart(14)} ${r.busbw.toFixed(4).padStart(12)} ${(100 * r.linkShare).toFixed(0).padStart(5)}% ${railCol(r)}% ${r.cpuCores === undefined ? '   -' : r.cpuCores.toFixed(2)}`;
    lines.push(`  ${`${ring.bytes >> 20} MB`.padStart(6)} ${String(ring.round).padStart(6)} ${f(ring)} ${f(hier)} ${(hier.busbw / ring.busbw).toFixed(2).padStart(10)}x ${ring.ideal.toFixed(2).padStart(6)}x`);
  }
  return lines.join('\n');
}
