import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import * as zmq from 'zeromq';
import { encodeHeader, hashRunId } from '../header';
import { AllReduceAlgorithm, topologyAllReduce } from '../hierarchical';
import { FrameType, OpKind, Wire, WireType } from '../types';
import { serveRank, ScenarioEnv } from './child-runtime';
import { check, fill, hashOf } from './data';

/** Relative tolerance per unit of sum|x| for n ranks (a rounding per hop, plus one). */
function tolerance(wire: Wire, n: number): [number, number] {
  const u = wire === 'fp16' ? 2 ** -11 : wire === 'bf16' ? 2 ** -8 : 2 ** -24;
  return [(n + 1) * u, wire === 'fp16' ? (n + 1) * 2 ** -24 : 0];
}

function commOf(env: ScenarioEnv) {
  if (!env.comm) throw new Error('join first');
  return env.comm;
}

const scenarios = {
  /** params: { cases: { len, op, wire, algorithm? }[], seed, hosts? (host id per rank: topology-aware all-reduce) } */
  async allreduce(env: ScenarioEnv, p: { cases: { len: number; op: 'sum' | 'mean'; wire: Wire; algorithm?: AllReduceAlgorithm }[]; seed: number; hosts?: string[]; chunkBytes?: number }) {
    const c = commOf(env);
    const out = [];
    for (const [k, cs] of p.cases.entries()) {
      const seed = p.seed + k;
      const buf = fill(new Float32Array(cs.len), seed, c.rank);
      const t0 = performance.now();
      const res = p.hosts
        ? await topologyAllReduce(c, buf, p.hosts, { op: cs.op, wire: cs.wire, algorithm: cs.algorithm, chunkBytes: p.chunkBytes })
        : await c.allReduce(buf, { op: cs.op, wire: cs.wire });
      const ms = performance.now() - t0;
      const [rel, abs] = tolerance(cs.wire, c.worldSize);
      out.push({ ...cs, same: res === buf, ms, ...check(res, seed, c.worldSize, cs.op === 'mean', rel, abs) });
    }
    return out;
  },

  /** Counts V8's full and young collections over `iters` all-reduces of `len` elements. */
  async gcCount(env: ScenarioEnv, p: { len: number; iters: number; seed: number }) {
    const c = commOf(env);
    const buf = fill(new Float32Array(p.len), p.seed, c.rank);
    await c.allReduce(buf); // warm-up: sockets connected, code optimised
    const kinds = { major: 0, minor: 0 };
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
        if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) kinds.major++;
        else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) kinds.minor++;
      }
    });
    obs.observe({ entryTypes: ['gc'] });
    // one buffer throughout (a fresh one per call would itself be external memory for V8),
    // refilled before the last call, whose result is checked
    for (let i = 0; i < p.iters; i++) await c.allReduce(i === p.iters - 1 ? fill(buf, p.seed, c.rank) : buf);
    await new Promise((res) => setTimeout(res, 50)); // gc entries are delivered asynchronously
    obs.disconnect();
    const [rel, abs] = tolerance('fp32', c.worldSize);
    return { ...kinds, ...check(buf, p.seed, c.worldSize, false, rel, abs) };
  },

  /** Bucketed all-reduce of many tensors; checked per tensor. */
  async many(env: ScenarioEnv, p: { lengths: number[]; bucketBytes: number; seed: number; algorithm?: AllReduceAlgorithm | 'auto' }) {
    const c = commOf(env);
    const bufs = p.lengths.map((len, k) => fill(new Float32Array(len), p.seed + k, c.rank));
    const before = { ...c.allReduceCalls };
    const res = await c.allReduceMany(bufs, { bucketBytes: p.bucketBytes, algorithm: p.algorithm });
    const [rel] = tolerance('fp32', c.worldSize);
    const calls = { ring: c.allReduceCalls.ring - before.ring, hierarchical: c.allReduceCalls.hierarchical - before.hierarchical };
    return res.map((b, k) => ({ inPlace: b === bufs[k], calls, ...check(b, p.seed + k, c.worldSize, false, rel, 0) }));
  },

  /** Broadcast (small and multi-piece), barrier, all-gather and tagged point-to-point around the ring. */
  async collectives(env: ScenarioEnv, p: { bigBytes: number; root: number }) {
    const c = commOf(env);
    const n = c.worldSize;
    const small = c.rank === p.root ? new Uint8Array([1, 2, 3, c.rank]) : null;
    const gotSmall = Array.from(await c.broadcast(small, p.root));
    const big = c.rank === p.root ? fill(new Float32Array(p.bigBytes / 4), 99, p.root) : null;
    const gotBig = await c.broadcast(big, p.root);
    const empty = await c.broadcast(c.rank === 0 ? new Uint8Array(0) : null, 0);
    await c.barrier();
    const gathered = await c.allGather({ rank: c.rank, loss: c.rank * 0.5 });
    let ring: number[] = [];
    if (n > 1) {
      const right = (c.rank + 1) % n;
      const left = (c.rank - 1 + n) % n;
      // two tags in flight, received in the opposite order they were sent
      await c.send(right, 7, new Float32Array([c.rank, 7]));
      await c.send(right, 8, new Float32Array([c.rank, 8]));
      await c.send(right, 8, new Float32Array([c.rank, 9]));
      const b8a = await c.recv(left, 8);
      const b8b = await c.recv(left, 8);
      const b7 = await c.recv(left, 7);
      const f = (u: Uint8Array) => Array.from(new Float32Array(u.slice().buffer));
      ring = [...f(b7), ...f(b8a), ...f(b8b)];
    }
    return { gotSmall, bigHash: hashOf(gotBig), bigLen: gotBig.length, emptyLen: empty.length, gathered, ring };
  },

  /** All-reduces a large buffer in a loop until something fails; reports the error and its latency. `hosts`: topology-aware (see allreduce). */
  async loop(env: ScenarioEnv, p: { len: number; iters: number; hosts?: string[]; algorithm?: AllReduceAlgorithm }) {
    const c = commOf(env);
    const buf = new Float32Array(p.len).fill(1);
    let t0 = 0;
    for (let i = 0; i < p.iters; i++) {
      t0 = performance.now();
      buf.fill(1);
      try {
        if (p.hosts) await topologyAllReduce(c, buf, p.hosts, { algorithm: p.algorithm });
        else await c.allReduce(buf);
      } catch (e: any) {
        return { iter: i, code: e.code, ranks: e.ranks, opMs: performance.now() - t0 };
      }
      if (buf[0] !== c.worldSize) throw new Error(`wrong sum ${buf[0]}`);
      if (i === 0) env.emit({ iter: 0 });
    }
    return { done: p.iters, lastMs: performance.now() - t0 };
  },

  /** Blocks the event loop for `ms` (a stalled rank), then calls allReduce. */
  async busy(env: ScenarioEnv, p: { ms: number }) {
    const c = commOf(env);
    const end = Date.now() + p.ms;
    while (Date.now() < end);
    return c.allReduce(new Float32Array(4)).then(
      () => 'ok',
      (e) => ({ code: e.code, ranks: e.ranks }),
    );
  },

  /** Calls allReduce with a length of its own, to provoke a mismatch. */
  async lengths(env: ScenarioEnv, p: { len: number }) {
    await commOf(env).allReduce(new Float32Array(p.len));
    return 'ok';
  },

  /** Sends frames claiming to be from `fromRank` of an old epoch, shaped like the next all-reduce's. */
  async injectStale(env: ScenarioEnv, p: { to: string; runId: string; epoch: number; fromRank: number; seqs: number[]; len: number; pieces: number }) {
    const push = new zmq.Push({ linger: 2000 });
    push.connect(p.to);
    const junk = new Float32Array(p.len).fill(1e6);
    for (const seq of p.seqs) {
      for (let step = 0; step < 8; step++) {
        for (let piece = 0; piece < p.pieces; piece++) {
          const h = encodeHeader({ type: FrameType.Data, runHash: hashRunId(p.runId), epoch: p.epoch, seq, src: p.fromRank, op: OpKind.AllReduce, wire: WireType.F32, step, piece, tag: 0, total: p.len, group: 0 });
          await push.send([h, junk]);
        }
      }
    }
    push.close();
    return 'sent';
  },

  /**
   * A process outside the run dials `to` and sends frames shaped like the run's next
   * all-reduce (rank `fromRank`'s, epoch `epoch`, segments of `elements`), with CURVE client keys (hex) or none;
   * reports what its socket saw of the handshake within `waitMs`.
   */
  async inject(_env: ScenarioEnv, p: { to: string; runId: string; epoch: number; fromRank: number; len: number; elements: number; curve?: { serverKey: string; publicKey: string; secretKey: string }; waitMs: number }) {
    const key = (hex: string) => Buffer.from(hex, 'hex') as unknown as string;
    const push = new zmq.Push({
      linger: 0,
      sendTimeout: 1000,
      ...(p.curve ? { curveServerKey: key(p.curve.serverKey), curvePublicKey: key(p.curve.publicKey), curveSecretKey: key(p.curve.secretKey) } : {}),
    });
    const seen = { handshake: 0, authError: 0, protocolError: 0 };
    push.events.on('handshake', () => seen.handshake++);
    push.events.on('handshake:error:auth', () => seen.authError++);
    push.events.on('handshake:error:protocol', () => seen.protocolError++);
    push.connect(p.to);
    const junk = new Float32Array(p.elements).fill(1e6); // one ring segment of an all-reduce of `len`
    for (let step = 0; step < 8; step++) {
      const h = encodeHeader({ type: FrameType.Data, runHash: hashRunId(p.runId), epoch: p.epoch, seq: 1, src: p.fromRank, op: OpKind.AllReduce, wire: WireType.F32, step, piece: 0, tag: 0, total: p.len, group: 0 });
      await push.send([h, junk]).catch(() => undefined); // queued for the connection, whether or not it is ever let in
    }
    await new Promise((r) => setTimeout(r, p.waitMs));
    push.close();
    return seen;
  },

  /**
   * Sub-communicators of a 2D layout (rank = row * cols + col): the world, every row and every
   * column all-reduce at the same time, rows exchange tagged point-to-point frames, and then
   * `loopGroup` (if set) all-reduces in this rank's column until something fails.
   */
  async groups(env: ScenarioEnv, p: { cols: number; len: number; loopGroup?: 'row' | 'col' }) {
    const c = commOf(env);
    const rows = c.worldSize / p.cols;
    const row = Math.floor(c.rank / p.cols);
    const col = c.rank % p.cols;
    const rowComm = c.subgroup(Array.from({ length: p.cols }, (_, k) => row * p.cols + k), 'row');
    const colComm = c.subgroup(Array.from({ length: rows }, (_, k) => k * p.cols + col), 'col');
    const fillRank = (g: number) => new Float32Array(p.len).map((_, i) => (g + 1) * 1000 + i);
    const [world, byRow, byCol] = await Promise.all([
      c.allReduce(fillRank(c.rank)),
      rowComm.allReduce(fillRank(col)),
      colComm.allReduceMany([fillRank(row), fillRank(row).subarray(0, 3)], { bucketBytes: 1024 }),
    ]);
    // p2p within the row: to the right neighbour, with the same tag the world uses below
    const right = (rowComm.rank + 1) % rowComm.worldSize;
    const left = (rowComm.rank - 1 + rowComm.worldSize) % rowComm.worldSize;
    let fromLeft: number[] = [];
    if (rowComm.worldSize > 1) {
      await rowComm.send(right, 5, new Float32Array([row, col]));
      if (c.worldSize > 1) await c.send((c.rank + 1) % c.worldSize, 5, new Float32Array([-1]));
      fromLeft = Array.from(new Float32Array((await rowComm.recv(left, 5)).slice().buffer));
      if (c.worldSize > 1) await c.recv((c.rank - 1 + c.worldSize) % c.worldSize, 5);
    }
    const gathered = await colComm.allGather({ row, col });
    const out = {
      rowRank: rowComm.rank, colRank: colComm.rank, rowSize: rowComm.worldSize, colSize: colComm.worldSize,
      world: Array.from(world.subarray(0, 2)), byRow: Array.from(byRow.subarray(0, 2)), byCol: Array.from(byCol[0].subarray(0, 2)), byColSmall: Array.from(byCol[1]),
      fromLeft, gathered,
    };
    if (!p.loopGroup) return out;
    const g = p.loopGroup === 'row' ? rowComm : colComm;
    const buf = new Float32Array(1_000_000);
    env.emit({ iter: 0 });
    for (;;) {
      const t0 = performance.now();
      try {
        await g.allReduce(buf.fill(1));
      } catch (e: any) {
        return { ...out, code: e.code, ranks: e.ranks, opMs: performance.now() - t0 };
      }
    }
  },

  async stats(env: ScenarioEnv) {
    return env.node.stats;
  },

  /**
   * This process's tcp sockets: its socket fds matched by inode against its namespace's tcp
   * tables, so a spec can tell that a failed communicator let go of its connections.
   */
  async tcpSockets(env: ScenarioEnv) {
    const inodes = new Set<string>();
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        // closed between the listing and the read
      }
    }
    const sockets: { localPort: number; remote: string; state: string }[] = [];
    for (const table of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
      for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
        const f = line.trim().split(/\s+/);
        if (!inodes.has(f[9])) continue;
        const [, localPort] = f[1].split(':');
        const [remoteHex, remotePort] = f[2].split(':');
        sockets.push({ localPort: parseInt(localPort, 16), remote: `${hexIPv4(remoteHex)}:${parseInt(remotePort, 16)}`, state: TCP_STATES[f[3]] ?? f[3] });
      }
    }
    return { listenPort: Number(env.node.address.tcp.slice(env.node.address.tcp.lastIndexOf(':') + 1)), sockets };
  },
};

const TCP_STATES: Record<string, string> = { '01': 'ESTABLISHED', '02': 'SYN_SENT', '03': 'SYN_RECV', '04': 'FIN_WAIT1', '05': 'FIN_WAIT2', '06': 'TIME_WAIT', '07': 'CLOSE', '08': 'CLOSE_WAIT', '09': 'LAST_ACK', '0A': 'LISTEN', '0B': 'CLOSING' };

/** /proc/net/tcp writes an IPv4 address as one little-endian hex word (tcp6 rows: shown as is). */
function hexIPv4(hex: string): string {
  if (hex.length !== 8) return hex;
  return [6, 4, 2, 0].map((i) => parseInt(hex.slice(i, i + 2), 16)).join('.');
}

void serveRank(scenarios);
