import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

/** Linux clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on every mainstream kernel). */
const TICKS = 100;

/** CPU seconds (user + system) and resident memory of a process, from /proc. */
export function processStats(pid: number): { cpuSec: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at the last ')'.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuSec = (Number(f[11]) + Number(f[12])) / TICKS;
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuSec, rssBytes: rss ? Number(rss[1]) * 1024 : NaN };
}

/** One section of INFO as numbers where they are numbers. */
export async function redisInfo(redis: Redis, section: string): Promise<Record<string, string>> {
  const text = await redis.info(section);
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** INFO commandstats as { command: { calls, usec } }. */
export async function commandStats(redis: Redis): Promise<Record<string, { calls: number; usec: number }>> {
  const info = await redisInfo(redis, 'commandstats');
  const out: Record<string, { calls: number; usec: number }> = {};
  for (const [k, v] of Object.entries(info)) {
    const m = /calls=(\d+),usec=(\d+)/.exec(v);
    if (k.startsWith('cmdstat_') && m) out[k.slice(8)] = { calls: Number(m[1]), usec: Number(m[2]) };
  }
  return out;
}
