import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Makes "hosts" on one machine: one network namespace per host, each joined to a bridge in
 * the root namespace by a veth pair (a pair and a bridge per rail with `rails`), with the
 * host's egress shaped by `tc` tbf to a chosen rate (no netem here). Workers run inside a host with `ip netns exec`; tcp crosses the
 * shaped veths, ipc stays within a host. Needs root (CAP_NET_ADMIN): see `netnsUnavailable`.
 */
export interface HostNetworkOptions {
  /** Number of hosts (namespaces). */
  hosts: number;
  /** Egress rate of every host's link, in Mbit/s (tbf). Omit for an unshaped link. */
  rateMbit?: number;
  /** Short unique tag, so parallel runs do not collide on namespace and link names. */
  tag?: string;
  /**
   * Also give every host a second, unshaped link (`ctl0`) to a bridge that has an address in
   * the root namespace, for the control plane (Redis, S3, the coordinator, reached through
   * forwards on that address). Cutting or degrading the data link (`eth0`) then leaves the
   * control plane up, as on a cluster with a management network.
   */
  controlPlane?: boolean;
  /**
   * Data links per host (default 1). Rail k of every host is its own veth (`eth<k>`, shaped
   * like eth0) on its own bridge and subnet 10.77.k.0/24, as on rail-optimised clusters where
   * each local GPU has a NIC and NIC k of every host hangs off the same leaf switch. A rank
   * bound to its host's rail-k address receives its tcp over rail k, and a host's traffic to a
   * rail-k address leaves on rail k (the only route to that subnet).
   */
  rails?: number;
}

/** One data link of a host. */
export interface HostRail {
  /** The host's address on this rail. */
  ip: string;
  /** Veth end inside the namespace (shaped). */
  device: string;
  /** Veth end in the root namespace, on the rail's bridge; its rx counters are the host's egress on the rail. */
  outer: string;
}

export interface SimulatedHost {
  /** Namespace name, also used as FLEET_HOST_ID. */
  name: string;
  /** The host's address on the bridge (rail 0). */
  ip: string;
  /** Veth end inside the namespace (shaped), rail 0's. */
  device: string;
  /** Every data link, rail 0 first (`ip` and `device` are rails[0]'s). */
  rails: HostRail[];
  /** Command prefix that runs a program inside the host. */
  exec: string[];
  /** The host's address on the control bridge (with `controlPlane`). */
  controlIp?: string;
}

export interface HostNetwork {
  hosts: SimulatedHost[];
  /** Rail 0's bridge. */
  bridge: string;
  /** Data links per host. */
  rails: number;
  /** The root namespace's address on the control bridge, which every host reaches (with `controlPlane`). */
  rootIp?: string;
  /** Removes every namespace, veth and the bridge; safe to call twice. */
  destroy(): void;
}

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Why namespaces cannot be made here (a reason to print when skipping), or null when they can. */
export function netnsUnavailable(): string | null {
  const probe = `tfprobe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.error) return `ip (iproute2) is not installed: ${r.error.message}`;
  if (r.status !== 0) return `ip netns add is not allowed here (needs root / CAP_NET_ADMIN): ${r.stderr.trim()}`;
  spawnSync('ip', ['netns', 'del', probe]);
  const tc = spawnSync('tc', ['-V'], { encoding: 'utf8' });
  if (tc.error) return `tc (iproute2) is not installed: ${tc.error.message}`;
  return null;
}

/** Shapes the egress of `device` (in namespace `ns`, or the root namespace when null) to `rateMbit` with tbf. */
export function shapeLink(ns: string | null, device: string, rateMbit: number): void {
  if (!(rateMbit > 0)) throw new Error(`rateMbit must be a positive number of Mbit/s, got ${rateMbit}`);
  // burst of ~1 ms at the rate (at least 32 KB so small rates still pass full frames); queue 50 ms
  const burst = Math.max(32 * 1024, Math.round((rateMbit * 1e6) / 8 / 1000));
  const tc = ['tc', 'qdisc', 'replace', 'dev', device, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', String(burst), 'latency', '50ms'];
  if (ns === null) execFileSync(tc[0], tc.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  else ip(['netns', 'exec', ns, ...tc]);
}

/** Builds `hosts` namespaces on a fresh bridge. Cleans up what it made if a step fails. */
export function createHostNetwork(opts: HostNetworkOptions): HostNetwork {
  if (!Number.isInteger(opts.hosts) || opts.hosts < 1 || opts.hosts > 200) {
    throw new Error(`hosts must be an integer from 1 to 200, got ${opts.hosts}`);
  }
  const rails = opts.rails ?? 1;
  if (!Number.isInteger(rails) || rails < 1 || rails > 8) throw new Error(`rails must be an integer from 1 to 8, got ${opts.rails}`);
  const tag = opts.tag ?? (process.pid % 100000).toString(36);
  const bridge = `tfbr${tag}`;
  // rail 0 keeps the names of the single-link network (other specs and tools know them)
  const railBridge = (k: number) => (k === 0 ? bridge : `tfbr${tag}r${k}`);
  const railOuter = (i: number, k: number) => (k === 0 ? `tf${tag}v${i}` : `tf${tag}v${i}r${k}`);
  const controlBridge = `tfcb${tag}`;
  const hosts: SimulatedHost[] = [];
  const made = { bridges: 0, control: false };
  let control: { prefix: string; rootIp: string } | null = null;
  const destroy = () => {
    hosts.forEach((h, i) => {
      // the root ends first: a namespace outlives its name while orphaned tcp sockets (a closed
      // connection whose peer was cut off) still retransmit, and its veths with it
      for (let k = 0; k < rails; k++) spawnSync('ip', ['link', 'del', railOuter(i, k)], { stdio: 'ignore' });
      spawnSync('ip', ['link', 'del', `tf${tag}c${i}`], { stdio: 'ignore' });
      spawnSync('ip', ['netns', 'del', h.name]); // its iptables rules go with it
    });
    for (let k = 0; k < made.bridges; k++) spawnSync('ip', ['link', 'del', railBridge(k)]);
    if (made.control) spawnSync('ip', ['link', 'del', controlBridge]);
    hosts.length = 0;
    made.bridges = 0;
    made.control = false;
  };
  try {
    for (let k = 0; k < rails; k++) {
      ip(['link', 'add', railBridge(k), 'type', 'bridge']);
      made.bridges = k + 1;
      ip(['link', 'set', railBridge(k), 'up']);
    }
    if (opts.controlPlane) {
      ip(['link', 'add', controlBridge, 'type', 'bridge']);
      made.control = true;
      control = addControlAddress(controlBridge, tag);
      ip(['link', 'set', controlBridge, 'up']);
    }
    for (let i = 0; i < opts.hosts; i++) {
      const name = `tf${tag}h${i}`;
      const railsOf: HostRail[] = Array.from({ length: rails }, (_, k) => ({ ip: `10.77.${k}.${i + 1}`, device: `eth${k}`, outer: railOuter(i, k) }));
      const host: SimulatedHost = { name, ip: railsOf[0].ip, device: railsOf[0].device, rails: railsOf, exec: ['ip', 'netns', 'exec', name] };
      ip(['netns', 'add', name]);
      hosts.push(host);
      ip(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
      railsOf.forEach((rail, k) => {
        ip(['link', 'add', rail.outer, 'type', 'veth', 'peer', 'name', rail.device, 'netns', name]);
        ip(['link', 'set', rail.outer, 'master', railBridge(k), 'up']);
        ip(['netns', 'exec', name, 'ip', 'addr', 'add', `${rail.ip}/24`, 'dev', rail.device]);
        ip(['netns', 'exec', name, 'ip', 'link', 'set', rail.device, 'up']);
      });
      if (control) {
        const ctlOuter = `tf${tag}c${i}`;
        host.controlIp = `${control.prefix}.${i + 1}`;
        ip(['link', 'add', ctlOuter, 'type', 'veth', 'peer', 'name', 'ctl0', 'netns', name]);
        ip(['link', 'set', ctlOuter, 'master', controlBridge, 'up']);
        ip(['netns', 'exec', name, 'ip', 'addr', 'add', `${host.controlIp}/24`, 'dev', 'ctl0']);
        ip(['netns', 'exec', name, 'ip', 'link', 'set', 'ctl0', 'up']);
      }
      if (opts.rateMbit !== undefined) {
        for (const rail of railsOf) {
          shapeLink(name, rail.device, opts.rateMbit);
          // shape the bridge side too, so traffic into the host is capped like traffic out of it
          shapeLink(null, rail.outer, opts.rateMbit);
        }
      }
    }
  } catch (err) {
    destroy();
    throw new Error(`could not build the host network: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`);
  }
  return { hosts, bridge, rails, ...(control ? { rootIp: control.rootIp } : {}), destroy };
}

/**
 * Puts a root-namespace address on the control bridge, in a /24 of 10.78-10.97 picked from the
 * tag that no interface of the root namespace uses yet: unlike the data bridges (isolated, so
 * every network can use 10.77.0.0/24), this subnet is routed in the root namespace and must
 * not overlap another test's. Only private 10.x addresses on links made here are touched.
 */
function addControlAddress(bridge: string, tag: string): { prefix: string; rootIp: string } {
  let h = 0;
  for (const ch of tag) h = (Math.imul(h, 31) + ch.charCodeAt(0)) >>> 0;
  for (let k = 0; k < 64; k++) {
    const n = (h + k * 7919) % (20 * 256);
    const prefix = `10.${78 + (n >> 8)}.${n & 255}`;
    const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
    if (used.includes(` ${prefix}.`)) continue;
    const rootIp = `${prefix}.254`;
    ip(['addr', 'add', `${rootIp}/24`, 'dev', bridge]);
    return { prefix, rootIp };
  }
  throw new Error('no free 10.78-10.97 /24 for the control bridge');
}

/** A host's data link (eth0) inside its namespace. */
function inHost(host: SimulatedHost, args: string[]): void {
  ip(['netns', 'exec', host.name, ...args]);
}

const LOSS_CHAIN = 'TF_LOSS';

/**
 * Drops `probability` (0..1) of the packets into and out of `host` on its data link with
 * iptables' `statistic` match (no netem here): the rules live in the host's own namespace, so
 * nothing outside it is touched, and they go with the namespace. Replaces an earlier loss.
 */
export function setLinkLoss(host: SimulatedHost, probability: number): void {
  if (!(probability > 0 && probability < 1)) throw new Error(`probability must be in (0, 1), got ${probability}`);
  clearLinkLoss(host);
  const ipt = ['iptables', '-w', '5'];
  inHost(host, [...ipt, '-N', LOSS_CHAIN]);
  inHost(host, [...ipt, '-A', LOSS_CHAIN, '-m', 'statistic', '--mode', 'random', '--probability', probability.toFixed(4), '-j', 'DROP']);
  inHost(host, [...ipt, '-I', 'INPUT', '-i', host.device, '-j', LOSS_CHAIN]);
  inHost(host, [...ipt, '-I', 'OUTPUT', '-o', host.device, '-j', LOSS_CHAIN]);
}

/** Removes the loss of setLinkLoss (no-op when there is none). */
export function clearLinkLoss(host: SimulatedHost): void {
  const ipt = ['ip', 'netns', 'exec', host.name, 'iptables', '-w', '5'];
  const run = (args: string[]) => spawnSync(ipt[0], [...ipt.slice(1), ...args], { stdio: 'ignore' }).status === 0;
  while (run(['-D', 'INPUT', '-i', host.device, '-j', LOSS_CHAIN]));
  while (run(['-D', 'OUTPUT', '-o', host.device, '-j', LOSS_CHAIN]));
  run(['-F', LOSS_CHAIN]);
  run(['-X', LOSS_CHAIN]);
}

/** Packets the loss rules of `host` dropped so far (both directions); 0 without loss rules. */
export function droppedPackets(host: SimulatedHost): number {
  const r = spawnSync('ip', ['netns', 'exec', host.name, 'iptables', '-w', '5', '-L', LOSS_CHAIN, '-n', '-v', '-x'], { encoding: 'utf8' });
  if (r.status !== 0) return 0; // no such chain (iptables-nft words it "incompatible")
  const rule = r.stdout.split('\n').find((l) => /DROP/.test(l));
  return rule ? Number(rule.trim().split(/\s+/)[0]) : 0;
}

/** Cuts a host's data link (`ip link set down` inside its namespace): its tcp peers see nothing more. */
export function cutLink(host: SimulatedHost): void {
  inHost(host, ['ip', 'link', 'set', host.device, 'down']);
}

/** Brings a cut data link back up (address, route and shaping stay as they were). */
export function restoreLink(host: SimulatedHost): void {
  inHost(host, ['ip', 'link', 'set', host.device, 'up']);
}

/** Whether a host's data link is up. */
export function linkIsUp(host: SimulatedHost): boolean {
  const out = execFileSync('ip', ['netns', 'exec', host.name, 'ip', '-o', 'link', 'show', host.device], { encoding: 'utf8' });
  return /[<,]UP[,>]/.test(out);
}

/**
 * Runs `fn` on a fresh host network and removes it afterwards: when `fn` ends or throws, and
 * when the process exits mid-way (an interrupted test runner or benchmark).
 */
export async function withHostNetwork<T>(opts: HostNetworkOptions, fn: (net: HostNetwork) => Promise<T>): Promise<T> {
  const net = createHostNetwork(opts);
  const forget = destroyOnExit(net);
  try {
    return await fn(net);
  } finally {
    net.destroy();
    forget();
  }
}

/**
 * Removes `net` when the process exits before its owner does: on exit, and on SIGINT/SIGTERM
 * (an interrupted test runner), after which the signal is raised again so the process still
 * ends as it would have. Returns the function that stops watching.
 */
export function destroyOnExit(net: HostNetwork): () => void {
  const onExit = () => net.destroy();
  const onSignal = (signal: NodeJS.Signals) => {
    forget();
    net.destroy();
    process.kill(process.pid, signal);
  };
  const forget = () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return forget;
}

/**
 * Spawn options (see spawnRanks) that place `localRanks` ranks on each host, host-major:
 * rank r runs inside host floor(r / localRanks), binds tcp on the address of its rail (local
 * rank l on rail l mod rails, rail 0 with one link) and reports its host's id. So with one rail
 * per local rank, the cross-host ring of local rank l (hierarchical.ts) runs on rail l, and a
 * flat ring's hop into local rank 0 of the next host runs on rail 0.
 */
export function hostPlacement(net: HostNetwork, localRanks: number): { prefix: (rank: number) => string[]; env: (rank: number) => Record<string, string> } {
  return {
    prefix: (r) => hostOfRank(net, localRanks, r).exec,
    env: (r) => ({ FLEET_HOST_ID: hostOfRank(net, localRanks, r).name, FLEET_COLLECTIVE_HOST: railOf(net, localRanks, r).ip }),
  };
}

/** The host rank r runs on under hostPlacement (host-major). */
function hostOfRank(net: HostNetwork, localRanks: number, rank: number): SimulatedHost {
  return net.hosts[Math.floor(rank / localRanks)];
}

/** The data link rank r binds on under hostPlacement. */
export function railOf(net: HostNetwork, localRanks: number, rank: number): HostRail {
  const host = hostOfRank(net, localRanks, rank);
  return host.rails[(rank % localRanks) % host.rails.length];
}

/**
 * Bytes each host has sent on each of its rails so far, [host][rail]: the rx counter of the
 * rail's root-namespace veth end (what leaves the host on it, Ethernet frames with headers).
 */
export function railTxBytes(net: HostNetwork): number[][] {
  return net.hosts.map((h) => h.rails.map((r) => Number(readFileSync(`/sys/class/net/${r.outer}/statistics/rx_bytes`, 'utf8'))));
}
