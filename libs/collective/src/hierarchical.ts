import { AllReduceOptions, Communicator } from './types';

/**
 * Hierarchical all-reduce over hosts of equal size (NCCL's "one ring per local rank"):
 *   1. all-reduce within the host (ipc, cheap),
 *   2. local rank l all-reduces shard l of the host sum with local rank l of every other host
 *      (tcp: each host sends 2 (H-1)/H of the buffer once, instead of the flat ring's traffic
 *      crossing the slow links on every hop),
 *   3. within the host, local rank l broadcasts its shard.
 * Every rank ends with the bytes of the same shard owners, so results are bitwise identical.
 */
export type AllReduceAlgorithm = 'ring' | 'hierarchical';

export interface TopologyAllReduceOptions extends AllReduceOptions {
  /** Force an algorithm; by default chosen by topology and size (see chooseAlgorithm). */
  algorithm?: AllReduceAlgorithm;
  /** Below this many bytes the flat ring's fewer phases win. Default 256 KB. */
  hierarchicalMinBytes?: number;
}

export const DEFAULT_HIERARCHICAL_MIN_BYTES = 256 * 1024;

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

interface Groups { local: Communicator; cross: Communicator; localRank: number; localSize: number }
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
    g = {
      local: comm.subgroup(mine, 'host'),
      cross: comm.subgroup(hosts.map((h) => h[localRank]), `cross-${localRank}`),
      localRank,
      localSize: mine.length,
    };
    byTopology.set(key, g);
  }
  return g;
}

/** All-reduce of `buf` in place over `comm`, whose rank r lives on host `hostOfRank[r]`. */
export async function topologyAllReduce(comm: Communicator, buf: Float32Array, hostOfRank: readonly string[], opts: TopologyAllReduceOptions = {}): Promise<Float32Array> {
  if (hostOfRank.length !== comm.worldSize) {
    throw new RangeError(`hostOfRank must give a host id for each of the ${comm.worldSize} ranks, got ${hostOfRank.length}`);
  }
  const { algorithm, hierarchicalMinBytes, op = 'sum', ...call } = opts;
  const chosen = algorithm ?? chooseAlgorithm(hostOfRank, buf.byteLength, hierarchicalMinBytes);
  if (chosen === 'ring') return comm.allReduce(buf, { ...call, op });
  if (chooseAlgorithm(hostOfRank, Infinity) !== 'hierarchical') {
    throw new RangeError(`algorithm 'hierarchical' needs several hosts with the same number (> 1) of ranks each: ${groupByHost(hostOfRank).map((h) => h.length).join(', ')}`);
  }
  const g = groupsOf(comm, hostOfRank);
  await g.local.allReduce(buf, { ...call, op: 'sum' });
  const shard = (l: number) => {
    const from = Math.floor((buf.length * l) / g.localSize);
    return buf.subarray(from, Math.floor((buf.length * (l + 1)) / g.localSize));
  };
  await g.cross.allReduce(shard(g.localRank), { ...call, op: 'sum' });
  for (let l = 0; l < g.localSize; l++) {
    const part = shard(l);
    const got = await g.local.broadcast(l === g.localRank ? part : null, l, { timeoutMs: call.timeoutMs });
    if (l !== g.localRank) new Uint8Array(part.buffer, part.byteOffset, part.byteLength).set(got);
  }
  if (op === 'mean') for (let i = 0; i < buf.length; i++) buf[i] /= comm.worldSize;
  return buf;
}
