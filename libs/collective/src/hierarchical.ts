import type { OpChannel } from './channel';
import { divF32 } from './reduce';
import { ringAllReduce } from './ring-allreduce';
import { ownedSegment, ringAllGather, ringReduceScatter } from './ring-phases';
import { RingLayout } from './partition';
import { AllReduceAlgorithm, AllReduceOptions, Communicator } from './types';

export type { AllReduceAlgorithm } from './types';

/**
 * Pipelined hierarchical all-reduce over hosts of equal size L (NCCL's rings per local rank).
 * The buffer is cut into chunks; for each chunk
 *   1. reduce-scatter within the host (ipc, fp32): local rank l holds the host's sum of shard l,
 *   2. local rank l all-reduces that shard with local rank l of every other host (its own ring
 *      of H ranks, tcp, the requested wire): each host sends 2(H-1)/H of the chunk across its
 *      link, against 2(HL-1)/(HL) for a flat ring,
 *   3. all-gather within the host (ipc, fp32).
 * The three stages run as three loops over the chunks at once, so chunk k crosses the hosts
 * while chunk k+1 is reduced and chunk k-1 gathered within them. Each sum is computed by one
 * rank and copied by the others, in an order that depends only on the topology and the
 * length, so every rank ends with the same bits (not those of the flat ring: the additions
 * are grouped by host, see docs/benchmarks.md).
 */
export interface TopologyAllReduceOptions extends AllReduceOptions {
  /** Below this many bytes the flat ring's fewer messages win. Default 256 KB. */
  hierarchicalMinBytes?: number;
  /** Chunk of the pipeline, bytes. Default 2 MB (see docs/benchmarks.md, "Across hosts"). */
  chunkBytes?: number;
}

export const DEFAULT_HIERARCHICAL_MIN_BYTES = 256 * 1024;
export const DEFAULT_CHUNK_BYTES = 2 << 20;
/** Cross-host all-reduces in flight per local rank: the next chunk's starts before the last one's final acknowledgement. */
const CROSS_WINDOW = 2;

/** The ranks of each host, hosts in order of first appearance, ranks ascending. */
export function groupByHost(hostOfRank: readonly string[]): number[][] {
  const hosts = new Map<string, number[]>();
  hostOfRank.forEach((h, r) => {
    if (typeof h !== 'string' || h === '') throw new TypeError(`hostOfRank[${r}] must be a non-empty host id, got ${JSON.stringify(h)}`);
    hosts.set(h, [...(hosts.get(h) ?? []), r]);
  });
  return [...hosts.values()];
}

/** Flat ring for one host, one rank per host, unequal hosts or small messages; hierarchical otherwise. */
export function chooseAlgorithm(hostOfRank: readonly string[], bytes: number, minBytes = DEFAULT_HIERARCHICAL_MIN_BYTES): AllReduceAlgorithm {
  const hosts = groupByHost(hostOfRank);
  const local = hosts[0].length;
  if (hosts.length === 1 || local === 1 || hosts.some((h) => h.length !== local)) return 'ring';
  return bytes >= minBytes ? 'hierarchical' : 'ring';
}

type Stage = 'rs' | 'cross' | 'ag';

interface Groups {
  /** Two groups of the same ranks so that reduce-scatters and all-gathers, which overlap, keep sequence numbers of their own. */
  rs: OpChannel;
  ag: OpChannel;
  cross: OpChannel;
  localRank: number;
  localSize: number;
  /**
   * Where each stage of the previous call ends. A stage of the next call starts after it, so
   * every group sees its operations in the same order on every rank even when calls overlap
   * (allReduceMany issues all buckets at once).
   */
  tails: Record<Stage, Promise<void>>;
}
const cache = new WeakMap<Communicator, Map<string, Groups>>();

function groupsOf(comm: Communicator, hostOfRank: readonly string[]): Groups {
  const key = hostOfRank.join('\u0000');
  let byTopology = cache.get(comm);
  if (!byTopology) cache.set(comm, (byTopology = new Map()));
  let g = byTopology.get(key);
  if (!g) {
    const hosts = groupByHost(hostOfRank);
    const mine = hosts.find((h) => h.includes(comm.rank))!;
    const localRank = mine.indexOf(comm.rank);
    // sub-communicators are ChannelApi objects, i.e. OpChannels (subgroup.ts)
    const sub = (ranks: number[], name: string) => comm.subgroup(ranks, name) as unknown as OpChannel;
    g = {
      rs: sub(mine, 'host-rs'),
      ag: sub(mine, 'host-ag'),
      cross: sub(hosts.map((h) => h[localRank]), `cross-${localRank}`),
      localRank,
      localSize: mine.length,
      tails: { rs: Promise.resolve(), cross: Promise.resolve(), ag: Promise.resolve() },
    };
    byTopology.set(key, g);
  }
  return g;
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => undefined); // a stage that never waits for it must not leave it unhandled
  return { promise, resolve, reject };
}

/** [start, end) of chunk k of `chunks` over `length` elements. */
function chunkRange(length: number, chunks: number, k: number): [number, number] {
  return [Math.floor((k * length) / chunks), Math.floor(((k + 1) * length) / chunks)];
}

/** All-reduce of `buf` in place over `comm`, whose rank r lives on host `hostOfRank[r]`. */
export async function topologyAllReduce(comm: Communicator, buf: Float32Array, hostOfRank: readonly string[], opts: TopologyAllReduceOptions = {}): Promise<Float32Array> {
  if (hostOfRank.length !== comm.worldSize) {
    throw new RangeError(`hostOfRank must give a host id for each of the ${comm.worldSize} ranks, got ${hostOfRank.length}`);
  }
  const { algorithm, hierarchicalMinBytes, chunkBytes, ...call } = opts;
  if (algorithm !== undefined && !['ring', 'hierarchical', 'auto'].includes(algorithm)) {
    throw new TypeError(`allReduce algorithm must be 'ring', 'hierarchical' or 'auto', got ${String(algorithm)}`);
  }
  const chosen = algorithm === undefined || algorithm === 'auto' ? chooseAlgorithm(hostOfRank, buf.byteLength, hierarchicalMinBytes) : algorithm;
  if (chosen === 'ring') return ringAllReduce(comm as unknown as OpChannel, buf, call);
  if (chooseAlgorithm(hostOfRank, Infinity) !== 'hierarchical') {
    throw new RangeError(`algorithm 'hierarchical' needs several hosts with the same number (> 1) of ranks each: ${groupByHost(hostOfRank).map((h) => h.length).join(', ')}`);
  }
  return hierarchicalAllReduce(groupsOf(comm, hostOfRank), buf, comm.worldSize, call, chunkBytes ?? DEFAULT_CHUNK_BYTES);
}

async function hierarchicalAllReduce(g: Groups, buf: Float32Array, worldSize: number, call: AllReduceOptions, chunkBytes: number): Promise<Float32Array> {
  if (!(buf instanceof Float32Array)) throw new TypeError('allReduce takes a Float32Array');
  const op = call.op ?? 'sum';
  if (op !== 'sum' && op !== 'mean') throw new TypeError(`allReduce op must be 'sum' or 'mean', got ${String(op)}`);
  if (!(chunkBytes >= 4)) throw new RangeError(`chunkBytes must be at least 4, got ${chunkBytes}`);
  const chunks = Math.max(1, Math.ceil(buf.byteLength / chunkBytes));
  const chunk = (k: number) => buf.subarray(...chunkRange(buf.length, chunks, k));
  // the shard local rank l reduces across hosts: the segment its reduce-scatter leaves it
  const shard = (k: number) => {
    const c = chunk(k);
    const L = new RingLayout(c.length, g.localSize, 1);
    const seg = ownedSegment(g.localRank, g.localSize);
    return c.subarray(L.segmentStart(seg), L.segmentStart(seg + 1));
  };
  const reduced = Array.from({ length: chunks }, deferred);
  const crossed = Array.from({ length: chunks }, deferred);
  const fail = (e: unknown) => {
    for (const d of [...reduced, ...crossed]) d.reject(e);
    throw e;
  };
  const { tails } = g;
  const timeoutMs = call.timeoutMs;

  const rs = (async () => {
    await tails.rs;
    for (let k = 0; k < chunks; k++) {
      await ringReduceScatter(g.rs, chunk(k), timeoutMs);
      reduced[k].resolve();
    }
  })().catch(fail);
  const cross = (async () => {
    await tails.cross;
    const inFlight: Promise<void>[] = [];
    for (let k = 0; k < chunks; k++) {
      await reduced[k].promise;
      if (inFlight.length >= CROSS_WINDOW) await inFlight.shift();
      const s = shard(k);
      const done = ringAllReduce(g.cross, s, { wire: call.wire, timeoutMs, op: 'sum' }).then(() => {
        // every member of this ring holds the same bits of the sum, so the same quotient
        if (op === 'mean') divF32(s, worldSize);
        crossed[k].resolve();
      });
      done.catch(() => undefined); // awaited below; not unhandled while an earlier one is awaited
      inFlight.push(done);
    }
    await Promise.all(inFlight);
  })().catch(fail);
  const ag = (async () => {
    await tails.ag;
    for (let k = 0; k < chunks; k++) {
      await crossed[k].promise;
      await ringAllGather(g.ag, chunk(k), timeoutMs);
    }
  })().catch(fail);

  const settled = (p: Promise<void>) => p.catch(() => undefined);
  g.tails = { rs: settled(rs), cross: settled(cross), ag: settled(ag) };
  await Promise.all([rs, cross, ag]);
  return buf;
}
