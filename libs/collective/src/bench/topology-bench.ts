import * as path from 'node:path';
import { AllReduceAlgorithm } from '../hierarchical';
import { joinAll, runAll, spawnRanks } from '../testing/harness';
import { hostPlacement, withHostNetwork } from '../testing/netns';

/**
 * Flat ring against hierarchical all-reduce on simulated hosts: H network namespaces of L
 * ranks each, every host's link shaped with tc tbf to `rateMbit` (both directions).
 */
export interface TopologyBenchOptions {
  hosts: number;
  localRanks: number;
  /** Inter-host link rate, Mbit/s (tbf). Default 1000. */
  rateMbit?: number;
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
  /** Bytes each host sends over its link per call / time, as a share of the shaped rate. */
  linkShare: number;
  rateMbit: number;
  /** The most hierarchical/ring can be when both keep the link full (idealSpeedup). */
  ideal: number;
}

const RANK = path.join(__dirname, 'bench-rank.js');

/** Fraction of the buffer one host sends across its link per call, hosts contiguous in the ring. */
export function interHostBytesPerByte(algorithm: AllReduceAlgorithm, hosts: number, localRanks: number): number {
  const n = hosts * localRanks;
  // flat ring: one ring edge leaves each host and carries 2(n-1)/n of the buffer;
  // hierarchical: L rings of H ranks over 1/L of the buffer each, 2(H-1)/H of it
  return algorithm === 'ring' ? (2 * (n - 1)) / n : (2 * (hosts - 1)) / hosts;
}

/**
 * Bound on hierarchical/ring busbw (= time ratio) when the host links are the bottleneck and
 * both algorithms keep them full: the ring's bytes per host over the hierarchical's,
 * (HL-1)/(L(H-1)). 2(H-1)/H per host is the least any all-reduce of fp32 can send: host h
 * must receive the other hosts' share of every element it ends with, and the links are full
 * duplex, so using both directions (both algorithms already do) does not change it.
 */
export function idealSpeedup(hosts: number, localRanks: number): number {
  return interHostBytesPerByte('ring', hosts, localRanks) / interHostBytesPerByte('hierarchical', hosts, localRanks);
}

export async function runTopologyBench(opts: TopologyBenchOptions): Promise<TopologyRow[]> {
  const o = { rateMbit: 1000, sizes: [4, 16, 64].map((m) => m << 20), iters: 5, rounds: 2, ...opts };
  for (const k of ['hosts', 'localRanks', 'iters', 'rounds'] as const) {
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new RangeError(`${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.hosts < 2) throw new RangeError(`hosts must be at least 2 to compare across hosts, got ${o.hosts}`);
  const n = o.hosts * o.localRanks;
  const topology = `${o.hosts}x${o.localRanks}`;
  const rows: TopologyRow[] = [];
  await withHostNetwork({ hosts: o.hosts, rateMbit: o.rateMbit, tag: `b${process.pid % 10000}` }, async (net) => {
    const procs = await spawnRanks(RANK, n, hostPlacement(net, o.localRanks));
    try {
      await joinAll(procs, `topo-${process.pid}`, 1, 120_000);
      const hosts = procs.map((p) => p.address.hostId);
      for (let round = 1; round <= o.rounds; round++) {
        for (const algorithm of ['ring', 'hierarchical'] as const) {
          const seen = procs[0].events.length;
          const replies = await runAll(procs, 'allreduce', () => ({ sizes: o.sizes, iters: o.iters, warmup: 1, hosts, algorithm, chunkBytes: o.chunkBytes }));
          const bad = replies.find((r) => !r.ok);
          if (bad) throw new Error(`bench rank failed (${algorithm}): ${bad.error?.message}`);
          for (const e of procs[0].events.slice(seen) as { bytes: number; seconds: number }[]) {
            const algbw = e.bytes / e.seconds / 1e9;
            const linkBytesPerSec = (interHostBytesPerByte(algorithm, o.hosts, o.localRanks) * e.bytes) / e.seconds;
            const row: TopologyRow = {
              algorithm, topology, round, bytes: e.bytes, timeUs: e.seconds * 1e6, algbw,
              busbw: (algbw * 2 * (n - 1)) / n, linkShare: (linkBytesPerSec * 8) / (o.rateMbit * 1e6), rateMbit: o.rateMbit,
              ideal: idealSpeedup(o.hosts, o.localRanks),
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
  const lines = [
    `# all-reduce sum fp32, ${rows[0].topology} (hosts x ranks per host) on network namespaces, inter-host links tc tbf ${rows[0].rateMbit} Mbit/s`,
    '# busbw = algbw * 2(n-1)/n for both; link = bytes each host sends across its link per second / the shaped rate',
    `# ideal = the most hier/ring can be with both links full: ring bytes per host / hierarchical's = (HL-1)/(L(H-1)) = ${rows[0].ideal.toFixed(2)}x here`,
    '#    size  round   ring time(ms)  busbw(GB/s)   link   hier time(ms)  busbw(GB/s)   link   hier/ring   ideal',
  ];
  for (const ring of rows.filter((r) => r.algorithm === 'ring')) {
    const hier = rows.find((r) => r.algorithm === 'hierarchical' && r.bytes === ring.bytes && r.round === ring.round);
    if (!hier) continue;
    const f = (r: TopologyRow) => `${(r.timeUs / 1000).toFixed(1).padStart(14)} ${r.busbw.toFixed(4).padStart(12)} ${(100 * r.linkShare).toFixed(0).padStart(5)}%`;
    lines.push(`  ${`${ring.bytes >> 20} MB`.padStart(6)} ${String(ring.round).padStart(6)} ${f(ring)} ${f(hier)} ${(hier.busbw / ring.busbw).toFixed(2).padStart(10)}x ${ring.ideal.toFixed(2).padStart(6)}x`);
  }
  return lines.join('\n');
}
