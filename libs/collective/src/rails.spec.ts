// A rail topology (a link per local rank, as on rail-optimised clusters) on network
// namespaces: local rank l's cross-host bytes really leave on rail l, the flat ring crosses
// on rail 0 only, and every rank ends with the same bits. Skipped, with the reason, where
// namespaces cannot be made (not root).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { idealSpeedup, interHostBytesPerByte } from './bench/topology-bench';
import { joinAll, runAll } from './testing/harness';
import { createHostNetwork, hostPlacement, netnsUnavailable, railOf, railTxBytes, withHostNetwork } from './testing/netns';
import { assertAllReduce, ok, withRanks } from './testing/spec-helpers';

const unavailable = netnsUnavailable();

test('bytes per link and the bound with rails: the hierarchical rings spread over the rails, the flat ring does not', () => {
  // 2x2: the ring sends 1.5 buffers per host on one link; hierarchical 1.0 on one link, 0.5 on each of two
  assert.equal(interHostBytesPerByte('ring', 2, 2, 2), 1.5);
  assert.equal(interHostBytesPerByte('hierarchical', 2, 2, 1), 1);
  assert.equal(interHostBytesPerByte('hierarchical', 2, 2, 2), 0.5);
  assert.equal(idealSpeedup(2, 2), 1.5);
  assert.equal(idealSpeedup(2, 2, 2), 3);
  assert.ok(Math.abs(idealSpeedup(3, 2, 2) - 2.5) < 1e-12);
  // 4 ranks per host on 2 rails: two rings per rail
  assert.equal(interHostBytesPerByte('hierarchical', 2, 4, 2), 0.5);
});

test('2 hosts x 2 ranks on 2 rails: cross-host bytes on the local rank\'s rail, flat ring on rail 0, bitwise equal', { skip: unavailable ?? false }, async () => {
  await withHostNetwork({ hosts: 2, rails: 2, rateMbit: 500, tag: `r${process.pid % 10000}` }, async (net) => {
    assert.deepEqual(net.hosts.map((h) => h.rails.map((r) => r.ip)), [['10.77.0.1', '10.77.1.1'], ['10.77.0.2', '10.77.1.2']]);
    await withRanks(4, async (procs) => {
      procs.forEach((p, r) => {
        const rail = railOf(net, 2, r);
        assert.equal(rail.ip, `10.77.${r % 2}.${(r >> 1) + 1}`);
        assert.ok(p.address.tcp.startsWith(`tcp://${rail.ip}:`), `rank ${r} binds on its rail: ${p.address.tcp}`);
      });
      await joinAll(procs, `rails-${process.pid}`, 1);
      const hosts = procs.map((p) => p.address.hostId);
      const cases = [1, 7919, 2 ** 20 + 3].flatMap((len) => [{ len, op: 'sum', wire: 'fp32', algorithm: 'hierarchical' }, { len, op: 'mean', wire: 'fp32', algorithm: 'hierarchical' }]);
      assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 21, cases, hosts }))));

      // 4 M floats = 16 MB: each cross ring (2 ranks) moves its 8 MB shard once each way
      const len = 4 * 2 ** 20;
      const bytes = len * 4;
      const sent = async (algorithm: 'ring' | 'hierarchical') => {
        const before = railTxBytes(net);
        assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 23, cases: [{ len, op: 'sum', wire: 'fp32', algorithm }], hosts }))));
        const after = railTxBytes(net);
        return after.map((h, i) => h.map((b, k) => b - before[i][k]));
      };
      const hier = await sent('hierarchical');
      const expected = interHostBytesPerByte('hierarchical', 2, 2, 2) * bytes;
      hier.forEach((h, i) => h.forEach((b, k) => {
        // at least the payload; at most it plus tcp/ip/ethernet headers (~5%) and acks
        assert.ok(b >= expected && b <= 1.15 * expected, `hierarchical: host ${i} sent ${b} bytes on rail ${k}, expected ${expected} plus headers`);
      }));
      const ring = await sent('ring');
      const ringExpected = interHostBytesPerByte('ring', 2, 2, 2) * bytes;
      ring.forEach(([rail0, rail1], i) => {
        assert.ok(rail0 >= ringExpected && rail0 <= 1.15 * ringExpected, `ring: host ${i} sent ${rail0} bytes on rail 0, expected ${ringExpected} plus headers`);
        // rail 1 carries only the heartbeats between the local ranks 1
        assert.ok(rail1 < 0.01 * ringExpected, `ring: host ${i} sent ${rail1} bytes on rail 1`);
      });
    }, hostPlacement(net, 2));
  });
});

test('rails: a network of 3 links per host builds, shapes every link and removes them', { skip: unavailable ?? false }, async () => {
  const tag = `s${process.pid % 10000}`;
  let outers: string[] = [];
  await withHostNetwork({ hosts: 2, rails: 3, rateMbit: 100, tag }, async (net) => {
    assert.equal(net.rails, 3);
    outers = net.hosts.flatMap((h) => h.rails.map((r) => r.outer));
    assert.deepEqual(railTxBytes(net).map((h) => h.length), [3, 3]);
    for (const h of net.hosts) {
      for (const r of h.rails) {
        const inside = execFileSync('ip', ['netns', 'exec', h.name, 'tc', 'qdisc', 'show', 'dev', r.device], { encoding: 'utf8' });
        const outside = execFileSync('tc', ['qdisc', 'show', 'dev', r.outer], { encoding: 'utf8' });
        for (const q of [inside, outside]) assert.match(q, /tbf .*rate 100Mbit/, `${h.name} ${r.device}: ${q}`);
      }
    }
  });
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  for (const o of outers) assert.ok(!links.includes(`${o}@`) && !links.includes(` ${o}:`), `veth ${o} removed`);
  assert.throws(() => createHostNetwork({ hosts: 2, rails: 0 }), /rails must be an integer/);
});
