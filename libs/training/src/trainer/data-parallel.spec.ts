// Data-parallel arithmetic without processes: ranks are Trainers in one process sharing an
// in-process fake Communicator (testing/in-process-comm.ts). The fake is allowed here only
// because the real ZeroMQ path is run by the cross-process e2e tests in test/.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tf, tensorsFromBytes } from '@tensorfleet/models';
import { Trainer } from './trainer';
import { createLrSchedule } from '../schedule/lr-schedule';
import { createInProcessGroup } from '../testing/in-process-comm';
import { randomBatch, sliceBatch, tinyConvNet, weightsOf } from '../testing/fixtures';

before(async () => {
  await tf.setBackend('cpu');
});

const schedule = () =>
  createLrSchedule({ type: 'step', lr: 0.2, stepSize: 1, gamma: 0.5, warmupSteps: 2 }, { stepsPerEpoch: 3, totalSteps: 6 });
const optimizer = { momentum: 0.9, weightDecay: 1e-3, nesterov: true };

describe('data-parallel Trainer', () => {
  it('two ranks on half batches match one trainer on the combined batch (frozen BN)', async () => {
    const comms = createInProcessGroup(2);
    const ranks = comms.map((comm) => new Trainer({ model: tinyConvNet(42), optimizer, schedule: schedule(), comm, freezeBatchNorm: true }));
    const single = new Trainer({ model: tinyConvNet(42), optimizer, schedule: schedule(), freezeBatchNorm: true });
    assert.deepEqual(weightsOf(ranks[0].model), weightsOf(single.model), 'seeded builds must start identical');
    for (let s = 0; s < 6; s++) {
      const batch = randomBatch(1000 + s, 12, [8, 8, 3], 5);
      const [r0, r1] = await Promise.all(ranks.map((t, r) => t.step(sliceBatch(batch, r * 6, r * 6 + 6))));
      const one = await single.step(batch);
      // Mean of the two half-batch losses is the full-batch loss.
      assert.ok(Math.abs((r0.loss + r1.loss) / 2 - one.loss) < 1e-5 * one.loss, `step ${s} loss`);
      assert.equal(r0.lr, one.lr);
    }
    const w0 = weightsOf(ranks[0].model);
    const w1 = weightsOf(ranks[1].model);
    assert.deepEqual(w0, w1, 'every rank must hold bitwise identical weights');
    const ws = weightsOf(single.model);
    let moved = 0;
    ws.forEach((w, i) => {
      let scale = 0;
      for (const v of w) scale = Math.max(scale, Math.abs(v));
      w.forEach((v, j) => {
        assert.ok(Math.abs(w0[i][j] - v) <= 1e-5 * scale + 1e-7, `${single.model.weights[i].name}[${j}]: ${w0[i][j]} vs ${v}`);
      });
      if (i === 0) moved = Math.abs(w[0] - weightsOf(tinyConvNet(42))[0][0]);
    });
    assert.ok(moved > 1e-4, 'the weights did train');
    [...ranks, single].forEach((t) => t.dispose());
  });

  it('BN in training mode: moving stats averaged across ranks, every weight bitwise identical', async () => {
    const comms = createInProcessGroup(3);
    const ranks = comms.map((comm) => new Trainer({ model: tinyConvNet(9), optimizer, schedule: schedule(), comm }));
    const batches = [0, 1, 2].map((r) => randomBatch(10 + r, 4, [8, 8, 3], 5));
    // Reference for the statistics: each rank's batch alone from the same start.
    const solo = batches.map(() => new Trainer({ model: tinyConvNet(9), optimizer, schedule: schedule() }));
    await Promise.all(ranks.map((t, r) => t.step(batches[r])));
    for (const [r, t] of solo.entries()) await t.step(batches[r]);
    const w = ranks.map((t) => weightsOf(t.model));
    assert.deepEqual(w[1], w[0]);
    assert.deepEqual(w[2], w[0]);
    const tensors = tf.memory().numTensors;
    await Promise.all(ranks.map((t, r) => t.step(batches[(r + 1) % 3])));
    assert.equal(tf.memory().numTensors, tensors, 'the data-parallel step (with BN sync) leaks no tensors');
    const stats = ranks[0].model.weights.map((v, i) => [v.name, i] as const).filter(([n]) => /moving_/.test(n)).map(([, i]) => i);
    assert.equal(stats.length, 2);
    for (const i of stats) {
      const per = solo.map((t) => weightsOf(t.model)[i]);
      // (w holds the state after the first step, where the reference applies.)
      w[0][i].forEach((v, c) => {
        const mean = (per[0][c] + per[1][c] + per[2][c]) / 3;
        assert.ok(Math.abs(v - mean) <= 1e-6 * Math.max(1, Math.abs(mean)), `${ranks[0].model.weights[i].name}[${c}] ${v} vs ${mean}`);
      });
      assert.notDeepEqual(per[0], per[1], 'ranks saw different batch statistics');
    }
    // With syncing off the stats stay per rank.
    const comms2 = createInProcessGroup(2);
    const unsynced = comms2.map((comm) => new Trainer({ model: tinyConvNet(9), optimizer, schedule: schedule(), comm, syncBatchNormStats: 'none' }));
    await Promise.all(unsynced.map((t, r) => t.step(batches[r])));
    assert.notDeepEqual(weightsOf(unsynced[0].model)[stats[0]], weightsOf(unsynced[1].model)[stats[0]]);
    [...ranks, ...solo, ...unsynced].forEach((t) => t.dispose());
  });

  it('broadcastInitialState copies weights, BN stats, velocity, step and schedule from the root', async () => {
    const comms = createInProcessGroup(3);
    const plateau = () => createLrSchedule({ type: 'plateau', lr: 0.1, patience: 0, gamma: 0.5 }, { stepsPerEpoch: 5, totalSteps: 50 });
    const ranks = comms.map((comm, r) => new Trainer({ model: tinyConvNet(100 + r), optimizer, schedule: plateau(), comm }));
    const velocity = (t: Trainer) => Object.values(tensorsFromBytes(t.optimizerBytes())).map((x) => x.data);
    // Give rank 1 (the root) BN stats, velocity and a reduced lr the others lack.
    const solo = new Trainer({ model: ranks[1].model, optimizer, schedule: ranks[1].schedule });
    await solo.step(randomBatch(5, 4, [8, 8, 3], 5));
    ranks[1].restore({ optimizer: solo.optimizerBytes(), state: solo.state() });
    ranks[1].schedule.observe(1);
    ranks[1].schedule.observe(2);
    assert.equal(ranks[1].lr, 0.05);
    assert.notDeepEqual(weightsOf(ranks[0].model), weightsOf(ranks[1].model));

    await Promise.all(ranks.map((t) => t.broadcastInitialState(1)));
    for (const r of [0, 2]) {
      assert.deepEqual(weightsOf(ranks[r].model), weightsOf(ranks[1].model), `rank ${r} weights`);
      assert.deepEqual(velocity(ranks[r]), velocity(ranks[1]), `rank ${r} velocity`);
      assert.ok(velocity(ranks[r])[0].some((v) => v !== 0));
      assert.deepEqual(ranks[r].state(), ranks[1].state(), `rank ${r} step + schedule`);
      assert.equal(ranks[r].lr, 0.05);
    }
    // And they stay identical through a data-parallel step.
    await Promise.all(ranks.map((t, r) => t.step(randomBatch(70 + r, 4, [8, 8, 3], 5))));
    const trainable = ranks[0].model.weights.map((v) => v.trainable);
    const w = ranks.map((t) => weightsOf(t.model).filter((_, i) => trainable[i]));
    assert.deepEqual(w[0], w[1]);
    assert.deepEqual(w[2], w[1]);
    solo.sgd.dispose();
    ranks.forEach((t) => t.dispose());

    // A fresh root (step 0) sends no velocity; receivers reset theirs to zero.
    const pair = createInProcessGroup(2).map((comm, r) => new Trainer({ model: tinyConvNet(200 + r), optimizer, schedule: plateau(), comm }));
    const lone = new Trainer({ model: pair[1].model, optimizer, schedule: pair[1].schedule });
    await lone.step(randomBatch(9, 4, [8, 8, 3], 5));
    pair[1].restore({ optimizer: lone.optimizerBytes(), state: lone.state() });
    assert.ok(velocity(pair[1])[0].some((v) => v !== 0));
    await Promise.all(pair.map((t) => t.broadcastInitialState(0)));
    assert.ok(velocity(pair[1]).every((v) => v.every((x) => x === 0)));
    assert.equal(pair[1].stepsDone, 0);
    assert.deepEqual(weightsOf(pair[1].model), weightsOf(pair[0].model));
    lone.sgd.dispose();
    pair.forEach((t) => t.dispose());
  });

  it('evaluate reports the global figures on every rank', async () => {
    const comms = createInProcessGroup(2);
    const ranks = comms.map((comm) => new Trainer({ model: tinyConvNet(4, 7), optimizer, schedule: schedule(), comm }));
    const single = new Trainer({ model: tinyConvNet(4, 7), optimizer, schedule: schedule() });
    const data = [randomBatch(1, 5, [8, 8, 3], 7), randomBatch(2, 3, [8, 8, 3], 7), randomBatch(3, 6, [8, 8, 3], 7)];
    // Unequal shares: rank 0 gets one batch, rank 1 two.
    const [e0, e1] = await Promise.all([ranks[0].evaluate([data[0]]), ranks[1].evaluate([data[1], data[2]])]);
    const all = await single.evaluate(data);
    assert.deepEqual(e0, e1);
    assert.equal(e0.samples, 14);
    assert.ok(Math.abs(e0.loss - all.loss) < 1e-6 * all.loss);
    assert.equal(e0.accuracy, all.accuracy);
    assert.equal(e0.top5, all.top5);
    [...ranks, single].forEach((t) => t.dispose());
  });

  it('evaluate feeds the plateau schedule the global loss: every rank decays at the same evaluation', async () => {
    const comms = createInProcessGroup(2);
    const plateau = () => createLrSchedule({ type: 'plateau', lr: 0.1, patience: 1, gamma: 0.5 }, { stepsPerEpoch: 5, totalSteps: 50 });
    const ranks = comms.map((comm) => new Trainer({ model: tinyConvNet(4), optimizer, schedule: plateau(), comm }));
    const quiet = new Trainer({ model: tinyConvNet(4), optimizer, schedule: plateau(), observeEvaluation: false });
    const data = [randomBatch(1, 5, [8, 8, 3], 5), randomBatch(2, 5, [8, 8, 3], 5)];
    const lrs: number[][] = [];
    for (let i = 0; i < 3; i++) {
      // Same data every time: no improvement after the first evaluation; patience 1 → decay at the third.
      await Promise.all(ranks.map((t, r) => t.evaluate([data[r]])));
      await quiet.evaluate(data);
      lrs.push(ranks.map((t) => t.lr));
    }
    assert.deepEqual(lrs, [[0.1, 0.1], [0.1, 0.1], [0.05, 0.05]]);
    assert.equal(quiet.lr, 0.1);
    [...ranks, quiet].forEach((t) => t.dispose());
  });
});
