import { execFileSync, spawnSync } from 'node:child_process';

/**
 * Makes "hosts" on one machine: one network namespace per host, each joined to a bridge in
 * the root namespace by a veth pair, with the host's egress shaped by `tc` tbf to a chosen
 * rate (no netem here). Workers run inside a host with `ip netns exec`; tcp crosses the
 * shaped veths, ipc stays within a host. Needs root (CAP_NET_ADMIN): see `netnsUnavailable`.
 */
export interface HostNetworkOptions {
  /** Number of hosts (namespaces). */
  hosts: number;
  /** Egress rate of every host's link, in Mbit/s (tbf). Omit for an unshaped link. */
  rateMbit?: number;
  /** Short unique tag, so parallel runs do not collide on namespace and link names. */
  tag?: string;
}

export interface SimulatedHost {
  /** Namespace name, also used as FLEET_HOST_ID. */
  name: string;
  /** The host's address on the bridge. */
  ip: string;
  /** Veth end inside the namespace (shaped). */
  device: string;
  /** Command prefix that runs a program inside the host. */
  exec: string[];
}

export interface HostNetwork {
  hosts: SimulatedHost[];
  bridge: string;
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
  const tag = opts.tag ?? (process.pid % 100000).toString(36);
  const bridge = `tfbr${tag}`;
  const hosts: SimulatedHost[] = [];
  const made = { bridge: false };
  const destroy = () => {
    for (const h of hosts) spawnSync('ip', ['netns', 'del', h.name]); // deletes its veth pair too
    if (made.bridge) spawnSync('ip', ['link', 'del', bridge]);
    hosts.length = 0;
    made.bridge = false;
  };
  try {
    ip(['link', 'add', bridge, 'type', 'bridge']);
    made.bridge = true;
    ip(['link', 'set', bridge, 'up']);
    for (let i = 0; i < opts.hosts; i++) {
      const name = `tf${tag}h${i}`;
      const outer = `tf${tag}v${i}`;
      const host: SimulatedHost = { name, ip: `10.77.0.${i + 1}`, device: 'eth0', exec: ['ip', 'netns', 'exec', name] };
      ip(['netns', 'add', name]);
      hosts.push(host);
      ip(['link', 'add', outer, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
      ip(['link', 'set', outer, 'master', bridge, 'up']);
      ip(['netns', 'exec', name, 'ip', 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0']);
      ip(['netns', 'exec', name, 'ip', 'link', 'set', 'eth0', 'up']);
      ip(['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
      if (opts.rateMbit !== undefined) {
        shapeLink(name, 'eth0', opts.rateMbit);
        // shape the bridge side too, so traffic into the host is capped like traffic out of it
        shapeLink(null, outer, opts.rateMbit);
      }
    }
  } catch (err) {
    destroy();
    throw new Error(`could not build the host network: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`);
  }
  return { hosts, bridge, destroy };
}

/**
 * Runs `fn` on a fresh host network and removes it afterwards: when `fn` ends or throws, and
 * when the process exits mid-way (an interrupted test runner or benchmark).
 */
export async function withHostNetwork<T>(opts: HostNetworkOptions, fn: (net: HostNetwork) => Promise<T>): Promise<T> {
  const net = createHostNetwork(opts);
  const cleanup = () => net.destroy();
  process.once('exit', cleanup);
  try {
    return await fn(net);
  } finally {
    net.destroy();
    process.off('exit', cleanup);
  }
}

/**
 * Spawn options (see spawnRanks) that place `localRanks` ranks on each host, host-major:
 * rank r runs inside host floor(r / localRanks), binds tcp on its address and reports its id.
 */
export function hostPlacement(net: HostNetwork, localRanks: number): { prefix: (rank: number) => string[]; env: (rank: number) => Record<string, string> } {
  const hostOf = (r: number) => net.hosts[Math.floor(r / localRanks)];
  return {
    prefix: (r) => hostOf(r).exec,
    env: (r) => ({ FLEET_HOST_ID: hostOf(r).name, FLEET_COLLECTIVE_HOST: hostOf(r).ip }),
  };
}
