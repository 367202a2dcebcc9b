// One data-parallel rank of multi-host-training.spec.ts: binds a collective node (inside its
// network-namespace host), prints its address, reads one JSON line (peers, rank, algorithm),
// trains a few steps with the Trainer and prints the weights it ends with.
import { createInterface } from 'node:readline';
import { CollectiveNode, type JoinCurve } from '@tensorfleet/collective';
import { createModel, initBackend, tf } from '@tensorfleet/models';
import { createLrSchedule } from '../schedule/lr-schedule';
import { Trainer } from '../trainer/trainer';
import { randomBatch } from './fixtures';

interface Config {
  runId: string;
  rank: number;
  worldSize: number;
  peers: never[];
  algorithm: 'ring' | 'auto';
  steps: number;
  /** This rank's CURVE keys for the epoch (curveMembers), as an assignment carries them. */
  curve: JoinCurve;
}

async function main(): Promise<void> {
  await initBackend();
  const node = await CollectiveNode.listen();
  const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  out({ address: node.address });
  const line = await createInterface({ input: process.stdin })[Symbol.asyncIterator]().next();
  const c = JSON.parse(line.value as string) as Config;
  const world = await node.join({ runId: c.runId, epoch: 1, rank: c.rank, worldSize: c.worldSize, peers: c.peers, timeoutMs: 120_000, curve: c.curve });
  const model = createModel('resnet8', { numClasses: 4, inputSize: 16, seed: 3 });
  const trainer = new Trainer({
    model, comm: world, allReduceAlgorithm: c.algorithm, optimizer: { momentum: 0.9 },
    schedule: createLrSchedule({ type: 'constant', lr: 0.05 }, { stepsPerEpoch: 100, totalSteps: 100 }),
  });
  await trainer.broadcastInitialState(0);
  const losses: number[] = [];
  for (let s = 0; s < c.steps; s++) losses.push((await trainer.step(randomBatch(100 * s + c.rank, 4, [16, 16, 3], 4))).loss);
  const weights = model.weights.map((w) => Array.from(w.read().dataSync() as Float32Array));
  out({ result: { losses, weights, calls: { ...world.allReduceCalls } } });
  trainer.dispose();
  tf.disposeVariables();
  await world.close();
  await node.close();
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err?.stack ?? err) }) + '\n');
  process.exitCode = 1;
});
