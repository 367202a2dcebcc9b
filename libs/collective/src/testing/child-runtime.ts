import { createInterface } from 'node:readline';
import { CollectiveNode } from '../node';
import { CollectiveError } from '../errors';
import { Communicator, JoinOptions } from '../types';

export interface ScenarioEnv {
  node: CollectiveNode;
  comm: Communicator | null;
  /** Extra JSON line to the parent while the scenario runs. */
  emit(event: unknown): void;
}
export type Scenario = (env: ScenarioEnv, params: any) => Promise<unknown>;

function errorJson(err: unknown): unknown {
  if (err instanceof CollectiveError) return { name: err.name, code: err.code, ranks: err.ranks, message: err.message };
  return { name: (err as Error)?.name, message: String((err as Error)?.message ?? err), stack: (err as Error)?.stack };
}

/**
 * Child side of the test/bench harness: listens, prints its address, then serves JSON-line
 * commands from stdin ({id, cmd: 'join'|'run'|'close'|'exit', ...}) with one reply line each.
 */
export async function serveRank(scenarios: Record<string, Scenario>): Promise<void> {
  // TF_TEST_MINOR_GC_BYTES lets a spec compare with the young collections turned off
  const minorGc = process.env.TF_TEST_MINOR_GC_BYTES;
  // FLEET_COLLECTIVE_HOST: the address of a simulated host (network namespace) to bind tcp on
  // TF_TEST_CURVE_HOLD_MS: how long an unknown CURVE key waits before it is refused (ListenOptions.curveHoldMs)
  const holdMs = process.env.TF_TEST_CURVE_HOLD_MS;
  const node = await CollectiveNode.listen({
    host: process.env.FLEET_COLLECTIVE_HOST ?? '127.0.0.1',
    ...(minorGc ? { minorGcEveryBytes: Number(minorGc) } : {}),
    ...(holdMs ? { curveHoldMs: Number(holdMs) } : {}),
  });
  const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');
  const env: ScenarioEnv = { node, comm: null, emit: (e) => out({ event: e }) };
  out({ ready: true, pid: process.pid, address: node.address });
  const rl = createInterface({ input: process.stdin });
  rl.on('line', async (line) => {
    const msg = JSON.parse(line) as { id: number; cmd: string; join?: JoinOptions; scenario?: string; params?: unknown };
    const t0 = performance.now();
    try {
      let result: unknown = null;
      if (msg.cmd === 'join') env.comm = await node.join(msg.join!);
      else if (msg.cmd === 'run') {
        const s = scenarios[msg.scenario!];
        if (!s) throw new Error(`unknown scenario ${msg.scenario}`);
        result = await s(env, msg.params);
      } else if (msg.cmd === 'close') await env.comm?.close();
      else if (msg.cmd === 'exit') {
        await node.close();
        out({ id: msg.id, ok: true, ms: performance.now() - t0 });
        process.exit(0);
      }
      out({ id: msg.id, ok: true, result, ms: performance.now() - t0 });
    } catch (err) {
      out({ id: msg.id, ok: false, error: errorJson(err), ms: performance.now() - t0 });
    }
  });
  rl.on('close', () => process.exit(0));
}
