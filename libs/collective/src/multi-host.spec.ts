// Ranks on simulated hosts: one network namespace per host on a bridge, links shaped with tc
// tbf, every rank a real process inside its host (`ip netns exec`), tcp between hosts and ipc
// within one. Skipped, with the reason, where namespaces cannot be made (not root).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { joinAll, runAll } from './testing/harness';
import { createHostNetwork, hostPlacement, netnsUnavailable, withHostNetwork } from './testing/netns';
import { assertAllReduce, ok, withRanks } from './testing/spec-helpers';

const unavailable = netnsUnavailable();
let runCounter = 0;
const runId = () => `netns-${process.pid}-${++runCounter}`;

test('hosts as network namespaces: the harness builds, shapes and removes them', { skip: unavailable ?? false }, async () => {
  let names: string[] = [];
  await withHostNetwork({ hosts: 3, rateMbit: 100, tag: `a${process.pid % 10000}` }, async (net) => {
    names = net.hosts.map((h) => h.name);
    const list = ipNetnsList();
    for (const n of names) assert.ok(list.includes(n), `namespace ${n} exists`);
    assert.deepEqual(net.hosts.map((h) => h.ip), ['10.77.0.1', '10.77.0.2', '10.77.0.3']);
  });
  const after = ipNetnsList();
  for (const n of names) assert.ok(!after.includes(n), `namespace ${n} removed`);
  assert.throws(() => createHostNetwork({ hosts: 0 }), /hosts must be an integer/);
  assert.throws(() => createHostNetwork({ hosts: 1, rateMbit: -5, tag: `b${process.pid % 10000}` }), /rateMbit must be a positive/);
  assert.ok(!ipNetnsList().includes(`tfb${process.pid % 10000}h0`), 'a failed build removes what it made');
});

test('2 hosts x 2 ranks over a 100 Mbit/s tbf link: correct, bitwise equal, tcp across hosts, and the shaping binds', { skip: unavailable ?? false }, async () => {
  const rateMbit = 100;
  await withHostNetwork({ hosts: 2, rateMbit, tag: `c${process.pid % 10000}` }, async (net) => {
    await withRanks(4, async (procs) => {
      procs.forEach((p, r) => {
        assert.equal(p.address.tcp.startsWith(`tcp://${net.hosts[r >> 1].ip}:`), true, `rank ${r} advertises its host's address: ${p.address.tcp}`);
        assert.equal(p.address.hostId, net.hosts[r >> 1].name);
      });
      await joinAll(procs, runId(), 1);
      const cases = [0, 1, 7919, 3 * 524288 + 5].flatMap((len) => [{ len, op: 'sum', wire: 'fp32' }, { len, op: 'mean', wire: 'fp32' }]);
      assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 5, cases }))));
      // 4 M floats: every ring edge carries 2 (n-1)/n of 16 MB = 24 MB, two of them cross the
      // shaped link; at 100 Mbit/s that is >= 1.9 s, on loopback it is ~0.1 s
      const len = 4 * 2 ** 20;
      const big = ok(await runAll(procs, 'allreduce', () => ({ seed: 9, cases: [{ len, op: 'sum', wire: 'fp32' }] })));
      assertAllReduce(big);
      const floorMs = ((2 * 3) / 4) * len * 4 * 8 / (rateMbit * 1e6) * 1000;
      const ms = Math.max(...big.map((b) => b[0].ms));
      assert.ok(ms >= 0.9 * floorMs, `all-reduce took ${ms.toFixed(0)} ms, below the ${floorMs.toFixed(0)} ms the shaped link allows: tbf is not applied`);
    }, hostPlacement(net, 2));
  });
});

test('hierarchical all-reduce on 2 namespace hosts x 2 ranks: float64 reference and bitwise equal on every rank', { skip: unavailable ?? false }, async () => {
  await withHostNetwork({ hosts: 2, rateMbit: 200, tag: `d${process.pid % 10000}` }, async (net) => {
    await withRanks(4, async (procs) => {
      await joinAll(procs, runId(), 1);
      const hosts = procs.map((p) => p.address.hostId);
      const cases = [1, 7919, 2 ** 20 + 3].flatMap((len) => [{ len, op: 'sum', wire: 'fp32', algorithm: 'hierarchical' }, { len, op: 'mean', wire: 'fp32', algorithm: 'hierarchical' }]);
      assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 13, cases, hosts }))));
    }, hostPlacement(net, 2));
  });
});

// a cut link, its typed errors and the recovery on the restored link: link-faults.spec.ts

function ipNetnsList(): string {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
}
