// The Trainer over the real ZeroMQ collective: two CollectiveNodes in this process on
// 127.0.0.1 (real sockets, real ring all-reduce), tcp with CURVE keys made as the
// coordinator makes them (@tensorfleet/control). Cross-process runs are in test/.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf } from '@tensorfleet/models';
import { CollectiveNode, Communicator } from '@tensorfleet/collective';
import { memberCurveKeys } from '@tensorfleet/control';
import { Trainer } from './trainer';
import { createLrSchedule } from '../schedule/lr-schedule';
import { createInProcessGroup } from '../testing/in-process-comm';
import { randomBatch, sliceBatch, tinyConvNet, weightsOf } from '../testing/fixtures';

let nodes: CollectiveNode[] = [];
let epoch = 1;

before(async () => {
  await tf.setBackend('cpu');
  nodes = await Promise.all([0, 1].map(() => CollectiveNode.listen({ host: '127.0.0.1', ipc: false, curve: 'tcp' })));
});

after(async () => {
  await Promise.all(nodes.map((n) => n.close()));
});

async function group(): Promise<Communicator[]> {
  const e = epoch++;
  const peers = nodes.map((n) => n.address);
  const curve = memberCurveKeys(2);
  return Promise.all(nodes.map((n, rank) => n.join({ runId: 'training-spec', epoch: e, rank, worldSize: 2, peers, timeoutMs: 10000, curve: curve[rank] })));
}

const schedule = () => createLrSchedule({ type: 'cosine', lr: 0.3, warmupSteps: 1 }, { stepsPerEpoch: 4, totalSteps: 8 });
const optimizer = { momentum: 0.9, weightDecay: 1e-3 };

describe('Trainer over ZeroMQ', () => {
  for (const wire of ['fp32', 'fp16'] as const) {
    it(`${wire}: broadcast start, steps keep ranks bitwise identical and match the combined batch`, async () => {
      const comms = await group();
      // Different seeds: only broadcastInitialState makes them start alike.
      const ranks = comms.map((comm, r) => new Trainer({ model: tinyConvNet(60 + r), optimizer, schedule: schedule(), comm, wire, freezeBatchNorm: true }));
      const single = new Trainer({ model: tinyConvNet(60), optimizer, schedule: schedule(), freezeBatchNorm: true });
      // The same two ranks over the in-process fake: with two ranks a+b is order-free and /2 exact,
      // so an fp32 ring all-reduce must give bitwise the same weights.
      const fakes = createInProcessGroup(2).map((comm) => new Trainer({ model: tinyConvNet(60), optimizer, schedule: schedule(), comm, wire, freezeBatchNorm: true }));
      await Promise.all(ranks.map((t) => t.broadcastInitialState(0)));
      assert.deepEqual(weightsOf(ranks[1].model), weightsOf(single.model));
      for (let s = 0; s < 4; s++) {
        const batch = randomBatch(300 + s, 8, [8, 8, 3], 5);
        await Promise.all(ranks.map((t, r) => t.step(sliceBatch(batch, r * 4, r * 4 + 4))));
        await single.step(batch);
        await Promise.all(fakes.map((t, r) => t.step(sliceBatch(batch, r * 4, r * 4 + 4))));
      }
      const [w0, w1, ws] = [...ranks, single].map((t) => weightsOf(t.model));
      assert.deepEqual(w0, w1, 'ranks bitwise identical');
      if (wire === 'fp32') assert.deepEqual(w0, weightsOf(fakes[0].model), 'ZeroMQ fp32 = in-process arithmetic, bitwise');
      // fp16 gradients on the wire: ~1e-3 relative per step instead of float32 rounding.
      const rtol = wire === 'fp32' ? 1e-5 : 5e-3;
      ws.forEach((w, i) => {
        const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        w.forEach((v, j) => assert.ok(Math.abs(w0[i][j] - v) <= rtol * scale, `${wire} ${i}[${j}] ${w0[i][j]} vs ${v}`));
      });
      const evals = await Promise.all(ranks.map((t, r) => t.evaluate([randomBatch(900 + r, 3 + r, [8, 8, 3], 5)])));
      assert.deepEqual(evals[0], evals[1]);
      assert.equal(evals[0].samples, 7);
      await Promise.all(comms.map((c) => c.close()));
      [...ranks, single, ...fakes].forEach((t) => t.dispose());
    });
  }

  it('BN in training mode with fp16 gradients: every weight, moving stats included, identical on both ranks', async () => {
    const comms = await group();
    const ranks = comms.map((comm, r) => new Trainer({ model: tinyConvNet(70 + r), optimizer, schedule: schedule(), comm, wire: 'fp16' }));
    await Promise.all(ranks.map((t) => t.broadcastInitialState(1)));
    for (let s = 0; s < 3; s++) await Promise.all(ranks.map((t, r) => t.step(randomBatch(500 + 2 * s + r, 4, [8, 8, 3], 5))));
    const [w0, w1] = ranks.map((t) => weightsOf(t.model));
    assert.deepEqual(w0, w1);
    const mm = ranks[0].model.weights.findIndex((w) => /moving_mean/.test(w.name));
    assert.ok(w0[mm].some((v) => v !== 0), 'moving mean trained');
    await Promise.all(comms.map((c) => c.close()));
    ranks.forEach((t) => t.dispose());
  });
});
