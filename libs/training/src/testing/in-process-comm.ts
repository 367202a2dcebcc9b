import { TrainerComm } from '../trainer/comm';

/**
 * A unit-test fake of @tensorfleet/collective's Communicator: ranks are objects in one
 * process that meet at numbered rendezvous. Used only to check the data-parallel
 * arithmetic of the Trainer without processes; the real ZeroMQ path is exercised by the
 * cross-process tests in test/. Reductions sum in rank order in float32, so every rank
 * gets the bitwise same result, as the real ring all-reduce guarantees.
 */
export function createInProcessGroup(worldSize: number): TrainerComm[] {
  type Pending = { inputs: unknown[]; arrived: number; resolvers: ((v: unknown) => void)[] };
  const rounds = new Map<number, Pending>();

  const meet = <T>(round: number, rank: number, input: unknown, combine: (inputs: unknown[]) => (r: number) => T): Promise<T> =>
    new Promise<T>((resolve) => {
      let p = rounds.get(round);
      if (!p) {
        p = { inputs: new Array(worldSize), arrived: 0, resolvers: new Array(worldSize) };
        rounds.set(round, p);
      }
      p.inputs[rank] = input;
      p.resolvers[rank] = resolve as (v: unknown) => void;
      p.arrived += 1;
      if (p.arrived === worldSize) {
        rounds.delete(round);
        const out = combine(p.inputs);
        const done = p;
        // Resolve asynchronously, like a network would.
        setImmediate(() => done.resolvers.forEach((r, i) => r(out(i))));
      }
    });

  const reduce = (inputs: Float32Array[][], op: 'sum' | 'mean'): Float32Array[] =>
    inputs[0].map((_, b) => {
      const acc = new Float32Array(inputs[0][b].length);
      for (const perRank of inputs) {
        if (perRank[b].length !== acc.length) throw new Error('allReduce: ranks passed buffers of different lengths');
        for (let i = 0; i < acc.length; i++) acc[i] += perRank[b][i];
      }
      if (op === 'mean') for (let i = 0; i < acc.length; i++) acc[i] /= worldSize;
      return acc;
    });

  return Array.from({ length: worldSize }, (_, rank) => {
    let round = 0;
    const comm: TrainerComm = {
      rank,
      worldSize,
      allReduceMany(bufs, opts) {
        return meet(round++, rank, bufs, (inputs) => {
          const result = reduce(inputs as Float32Array[][], opts?.op ?? 'sum');
          return (r) => (inputs[r] as Float32Array[]).map((buf, b) => (buf.set(result[b]), buf));
        });
      },
      async allReduce(buf, opts) {
        return (await comm.allReduceMany([buf], opts))[0];
      },
      broadcast(buf, root) {
        const mine = buf ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : null;
        return meet(round++, rank, mine, (inputs) => {
          const sent = inputs[root] as Uint8Array | null;
          if (!sent) throw new Error(`broadcast: root ${root} passed no buffer`);
          return () => sent.slice();
        });
      },
    };
    return comm;
  });
}
