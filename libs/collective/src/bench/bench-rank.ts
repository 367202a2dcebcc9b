// Child process of the all-reduce benchmark: one per rank (see allreduce-bench.ts).
import { rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zmq from 'zeromq';
import { AllReduceAlgorithm, topologyAllReduce } from '../hierarchical';
import { pullOptions, pushOptions } from '../socket-options';
import { serveRank, ScenarioEnv } from '../testing/child-runtime';
import { Wire } from '../types';
import { YoungCollector } from '../young-gc';
import { cpuSince, ThreadCpu, threadCpu } from './thread-cpu';

let rawPull: zmq.Pull | null = null;
let rawDone: Promise<{ bytes: number; seconds: number }> | null = null;
let rawPath: string | null = null;
let cpuMark: ThreadCpu | null = null;

function itersFor(bytes: number, fixed?: number): number {
  if (fixed) return fixed;
  return Math.max(3, Math.min(50, Math.floor(2 ** 30 / Math.max(bytes, 1))));
}

const scenarios = {
  /** Starts the CPU clock of a raw test (both processes, before any message moves). */
  async cpuStart() {
    cpuMark = threadCpu();
    return null;
  },
  /** CPU spent since cpuStart, per thread kind. */
  async cpuStop() {
    return cpuSince(cpuMark!, threadCpu());
  },
  /**
   * Binds a raw PULL and counts `count` messages in the background, freeing them with young
   * GCs as the library does (young-gc.ts), so the ceiling gets the same help as the ring.
   */
  async rawBind(_env: ScenarioEnv, p: { transport: 'ipc' | 'tcp'; count: number; minorGcEveryBytes: number }) {
    rawPull = new zmq.Pull({ ...pullOptions(), linger: 0 });
    rawPath = p.transport === 'ipc' ? path.join(os.tmpdir(), `tf-raw-${process.pid}-${Date.now()}.sock`) : null;
    const ep = rawPath ? `ipc://${rawPath}` : 'tcp://127.0.0.1:*';
    await rawPull.bind(ep);
    const pull = rawPull;
    const young = new YoungCollector(p.minorGcEveryBytes);
    rawDone = (async () => {
      let n = 0;
      let bytes = 0;
      let t0 = 0;
      for await (const [m] of pull) {
        if (n === 0) t0 = performance.now();
        else bytes += m.length; // the first message only starts the clock
        young.received(m.length);
        young.collectIfDue();
        if (++n === p.count) break;
      }
      return { bytes, seconds: (performance.now() - t0) / 1000 };
    })();
    return pull.lastEndpoint;
  },
  async rawWait() {
    const r = await rawDone!;
    rawPull!.close();
    if (rawPath) rmSync(rawPath, { force: true });
    return r;
  },
  async rawSend(_env: ScenarioEnv, p: { to: string; bytes: number; count: number }) {
    const push = new zmq.Push({ ...pushOptions(), linger: 5000 });
    push.connect(p.to);
    const buf = Buffer.alloc(p.bytes, 1);
    for (let i = 0; i < p.count; i++) await push.send(buf);
    push.close();
    return 'sent';
  },

  /** Times allReduce per size; every rank reports its mean time, rank 0 the max over ranks. */
  async allreduce(env: ScenarioEnv, p: { sizes: number[]; iters?: number; warmup: number; wire?: Wire; hosts?: string[]; algorithm?: AllReduceAlgorithm; chunkBytes?: number }) {
    const c = env.comm!;
    // with hosts: the topology-aware call (forced to p.algorithm), as the trainer makes it
    const reduce = (buf: Float32Array) =>
      p.hosts ? topologyAllReduce(c, buf, p.hosts, { wire: p.wire, algorithm: p.algorithm, chunkBytes: p.chunkBytes }) : c.allReduce(buf, { wire: p.wire });
    const rows = [];
    for (const bytes of p.sizes) {
      const buf = new Float32Array(Math.floor(bytes / 4)).fill(1);
      const iters = itersFor(bytes, p.iters);
      for (let i = 0; i < p.warmup; i++) await reduce(buf);
      await c.barrier();
      const cpu0 = threadCpu();
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) await reduce(buf);
      const sec = (performance.now() - t0) / 1000 / iters;
      // CPU of the whole process per call: JS thread, ZeroMQ I/O thread (kernel copies), GC threads
      const cpu = cpuSince(cpu0, threadCpu(), iters);
      const all = (await c.allGather([sec, cpu])) as [number, ThreadCpu][];
      const mean = (k: keyof ThreadCpu) => (all.some((a) => a[1][k] === null) ? null : all.reduce((acc, a) => acc + a[1][k]!, 0) / all.length);
      const row = {
        bytes: buf.length * 4,
        elements: buf.length,
        iters,
        seconds: Math.max(...all.map((a) => a[0])),
        cpu: { total: mean('total')!, main: mean('main'), zmq: mean('zmq'), other: mean('other') },
      };
      if (c.rank === 0) env.emit(row);
      rows.push(row);
    }
    return rows;
  },
};

void serveRank(scenarios);
