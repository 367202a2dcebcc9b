import type { AllReduceManyOptions, AllReduceOptions, Communicator } from '@tensorfleet/collective';
import { TrainerComm } from '../trainer/comm';

/**
 * A unit-test fake of @tensorfleet/collective's Communicator: ranks are objects in one
 * process that meet at numbered rendezvous. Used only to check the arithmetic of the trainers
 * and the run loop without processes; the real ZeroMQ path is exercised by the cross-process
 * tests in test/. Reductions sum in rank order in float32, so every rank gets the bitwise same
 * result, as the real ring all-reduce guarantees. Sub-communicators, point-to-point and the
 * small collectives behave as the real ones do; there are no deadlines.
 */
export function createInProcessWorld(worldSize: number): Communicator[] {
  const net = new Network();
  return Array.from({ length: worldSize }, (_, rank) => new FakeComm(net, 'world', Array.from({ length: worldSize }, (_, r) => r), rank));
}

/** The data-parallel fake the Trainer specs use: the same world, seen as TrainerComms. */
export function createInProcessGroup(worldSize: number): TrainerComm[] {
  return createInProcessWorld(worldSize);
}

type Pending = { inputs: unknown[]; arrived: number; resolvers: ((v: unknown) => void)[] };

class Network {
  readonly rounds = new Map<string, Pending>();
  readonly mail = new Map<string, { queue: Uint8Array[]; waiting: ((b: Uint8Array) => void)[] }>();

  box(key: string) {
    let b = this.mail.get(key);
    if (!b) this.mail.set(key, (b = { queue: [], waiting: [] }));
    return b;
  }
}

class FakeComm implements Communicator {
  readonly epoch = 1;
  readonly runId = 'in-process';
  readonly worldSize: number;
  readonly hostOfRank: readonly string[];
  /** Every call is one in-process exchange, counted as a ring. */
  readonly allReduceCalls = { ring: 0, hierarchical: 0 };
  private round = 0;
  private closed = false;

  constructor(
    private readonly net: Network,
    private readonly group: string,
    /** World rank of each member. */
    private readonly members: number[],
    readonly rank: number,
  ) {
    this.worldSize = members.length;
    this.hostOfRank = members.map(() => 'in-process');
  }

  private meet<T>(input: unknown, combine: (inputs: unknown[]) => (r: number) => T): Promise<T> {
    if (this.closed) return Promise.reject(new Error('communicator closed'));
    const key = `${this.group}#${this.round++}`;
    return new Promise<T>((resolve, reject) => {
      let p = this.net.rounds.get(key);
      if (!p) this.net.rounds.set(key, (p = { inputs: new Array(this.worldSize), arrived: 0, resolvers: new Array(this.worldSize) }));
      p.inputs[this.rank] = input;
      p.resolvers[this.rank] = resolve as (v: unknown) => void;
      if (++p.arrived < this.worldSize) return;
      this.net.rounds.delete(key);
      let out: (r: number) => T;
      try {
        out = combine(p.inputs);
      } catch (e) {
        reject(e);
        return;
      }
      const done = p;
      // Resolve asynchronously, like a network would.
      setImmediate(() => done.resolvers.forEach((r, i) => r(out(i))));
    });
  }

  allReduceMany(bufs: Float32Array[], opts: AllReduceManyOptions = {}): Promise<Float32Array[]> {
    this.allReduceCalls.ring++;
    return this.meet(bufs, (inputs) => {
      const all = inputs as Float32Array[][];
      const result = all[0].map((_, b) => {
        const acc = new Float32Array(all[0][b].length);
        for (const perRank of all) {
          if (perRank[b].length !== acc.length) throw new Error('allReduce: ranks passed buffers of different lengths');
          for (let i = 0; i < acc.length; i++) acc[i] += perRank[b][i];
        }
        if ((opts.op ?? 'sum') === 'mean') for (let i = 0; i < acc.length; i++) acc[i] /= this.worldSize;
        return acc;
      });
      return (r) => all[r].map((buf, b) => (buf.set(result[b]), buf));
    });
  }

  async allReduce(buf: Float32Array, opts?: AllReduceOptions): Promise<Float32Array> {
    return (await this.allReduceMany([buf], opts))[0];
  }

  broadcast(buf: Uint8Array | Float32Array | null, root: number): Promise<Uint8Array> {
    const mine = buf ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : null;
    return this.meet(mine, (inputs) => {
      const sent = inputs[root] as Uint8Array | null;
      if (!sent) throw new Error(`broadcast: root ${root} passed no buffer`);
      return () => sent.slice();
    });
  }

  async barrier(): Promise<void> {
    await this.meet(null, () => () => undefined);
  }

  allGather(value: unknown): Promise<unknown[]> {
    const json = JSON.stringify(value ?? null);
    return this.meet(json, (inputs) => () => (inputs as string[]).map((j) => JSON.parse(j)));
  }

  async send(peer: number, tag: number, buf: Uint8Array | Float32Array): Promise<void> {
    if (this.closed) throw new Error('communicator closed');
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
    const box = this.net.box(`${this.group}|${this.rank}>${peer}|${tag}`);
    const w = box.waiting.shift();
    if (w) setImmediate(() => w(bytes));
    else box.queue.push(bytes);
  }

  recv(peer: number, tag: number): Promise<Uint8Array> {
    if (this.closed) return Promise.reject(new Error('communicator closed'));
    const box = this.net.box(`${this.group}|${peer}>${this.rank}|${tag}`);
    const ready = box.queue.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => box.waiting.push(resolve));
  }

  subgroup(ranks: number[], name = ''): Communicator {
    if (!ranks.includes(this.rank)) throw new RangeError(`subgroup: rank ${this.rank} is not among ${ranks.join(', ')}`);
    const world = ranks.map((r) => this.members[r]);
    return new FakeComm(this.net, `${this.group}/${name}[${world.join(',')}]`, world, ranks.indexOf(this.rank));
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
