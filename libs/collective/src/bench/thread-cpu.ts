import { readdirSync, readFileSync } from 'node:fs';

/** CPU time of this process in microseconds, split by thread where Linux tells us. */
export interface ThreadCpu {
  total: number;
  /** The JavaScript thread: the algorithm, zeromq.js' bindings, GC pauses, finalisers. */
  main: number | null;
  /** ZeroMQ's I/O threads (ZMQbg/IO/*): socket reads and writes, i.e. the kernel copies. */
  zmq: number | null;
  /** Everything else: V8's concurrent GC and compiler threads, libuv. */
  other: number | null;
}

/** Run time of one thread in µs: schedstat (ns) when the kernel has it, else stat (ticks). */
function threadMicros(tid: string): number {
  try {
    return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1000;
  } catch {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // utime + stime at USER_HZ = 100
  }
}

export function threadCpu(): ThreadCpu {
  const u = process.cpuUsage();
  const out: ThreadCpu = { total: u.user + u.system, main: null, zmq: null, other: null };
  try {
    let main = 0;
    let zmq = 0;
    let other = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      let us: number;
      let name: string;
      try {
        us = threadMicros(tid);
        name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8');
      } catch {
        continue; // the thread ended while we looked
      }
      if (tid === String(process.pid)) main += us;
      else if (name.startsWith('ZMQbg/IO')) zmq += us;
      else other += us;
    }
    Object.assign(out, { main, zmq, other });
  } catch {
    // not Linux: totals only
  }
  return out;
}

/** (b - a) / div, field by field. */
export function cpuSince(a: ThreadCpu, b: ThreadCpu, div = 1): ThreadCpu {
  const d = (x: number | null, y: number | null) => (x === null || y === null ? null : (y - x) / div);
  return { total: (b.total - a.total) / div, main: d(a.main, b.main), zmq: d(a.zmq, b.zmq), other: d(a.other, b.other) };
}
