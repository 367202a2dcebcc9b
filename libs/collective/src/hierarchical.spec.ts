import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseAlgorithm, groupByHost } from './hierarchical';
import { joinAll, runAll } from './testing/harness';
import { assertAllReduce, ok, withRanks } from './testing/spec-helpers';

let runCounter = 0;
const runId = () => `hier-${process.pid}-${++runCounter}`;

test('groupByHost and chooseAlgorithm: flat ring for one host, one rank per host, unequal hosts and small messages', () => {
  assert.deepEqual(groupByHost(['b', 'a', 'b', 'a']), [[0, 2], [1, 3]]);
  const big = 1 << 20;
  assert.equal(chooseAlgorithm(['a', 'a', 'a', 'a'], big), 'ring');
  assert.equal(chooseAlgorithm(['a', 'b', 'c'], big), 'ring');
  assert.equal(chooseAlgorithm(['a', 'a', 'b'], big), 'ring');
  assert.equal(chooseAlgorithm(['a', 'a', 'b', 'b'], big), 'hierarchical');
  assert.equal(chooseAlgorithm(['a', 'a', 'b', 'b'], 1000), 'ring');
  assert.equal(chooseAlgorithm(['a', 'a', 'b', 'b'], 1000, 0), 'hierarchical');
  assert.throws(() => groupByHost(['a', '']), /hostOfRank\[1\] must be a non-empty host id/);
});

// hosts by FLEET_HOST_ID on loopback (runs anywhere; multi-host.spec runs it on namespaces)
for (const [hosts, local] of [[2, 2], [2, 3], [3, 2]] as const) {
  test(`hierarchical all-reduce, ${hosts} hosts x ${local} ranks: float64 reference, bitwise equal on every rank, mean and fp16`, async () => {
    const n = hosts * local;
    const hostOf = Array.from({ length: n }, (_, r) => `host-${Math.floor(r / local)}`);
    await withRanks(n, async (procs) => {
      await joinAll(procs, runId(), 1);
      const cases = [0, 1, 5, 7919, 3 * 524288 + 5].flatMap((len) => [
        { len, op: 'sum', wire: 'fp32', algorithm: 'hierarchical' },
        { len, op: 'mean', wire: 'fp32', algorithm: 'hierarchical' },
      ]);
      cases.push({ len: 1000003, op: 'sum', wire: 'fp16', algorithm: 'hierarchical' }, { len: 1000003, op: 'sum', wire: 'fp32', algorithm: undefined as never });
      assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 21, cases, hosts: hostOf }))));
    }, { env: (r) => ({ FLEET_HOST_ID: hostOf[r] }) });
  });
}

test('pipelined: 2 hosts x 2 ranks, 64 KB chunks (96 of them), and overlapping bucketed calls chosen by allReduce({ algorithm: auto })', async () => {
  const hostOf = ['h0', 'h0', 'h1', 'h1'];
  await withRanks(4, async (procs) => {
    await joinAll(procs, runId(), 1);
    const len = 3 * 524288 + 5;
    const cases = [{ len, op: 'sum', wire: 'fp32', algorithm: 'hierarchical' }, { len, op: 'mean', wire: 'fp32', algorithm: 'hierarchical' }, { len: 70001, op: 'sum', wire: 'bf16', algorithm: 'hierarchical' }];
    assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 31, cases, hosts: hostOf, chunkBytes: 64 * 1024 }))));
    // 4 buckets of 1 MB (hierarchical) and 2 small tensors (ring), all issued at once: every
    // group must still see its operations in the same order on every rank
    const lengths = [262144, 262144, 262144, 262144, 1000, 3];
    const res = ok(await runAll(procs, 'many', () => ({ lengths, bucketBytes: 1 << 20, seed: 40, algorithm: 'auto' })));
    const hashes = res[0].map((t: { hash: string }) => t.hash);
    for (const [r, tensors] of res.entries()) {
      tensors.forEach((t: { worst: number; hash: string; calls: { ring: number; hierarchical: number } }, k: number) => {
        assert.ok(t.worst <= 1, `rank ${r} tensor ${k}: ${t.worst}x the tolerance`);
        assert.equal(t.hash, hashes[k], `rank ${r} tensor ${k} differs from rank 0`);
        assert.deepEqual(t.calls, { ring: 1, hierarchical: 4 }, 'four 1 MB buckets hierarchical, the small ones packed in one ring');
      });
    }
  }, { env: (r) => ({ FLEET_HOST_ID: hostOf[r] }) });
});

test('hierarchical on an unequal topology is refused with the host sizes', async () => {
  const hostOf = ['a', 'a', 'b'];
  await withRanks(3, async (procs) => {
    await joinAll(procs, runId(), 1);
    const replies = await runAll(procs, 'allreduce', () => ({ seed: 1, cases: [{ len: 10, op: 'sum', wire: 'fp32', algorithm: 'hierarchical' }], hosts: hostOf }));
    for (const r of replies) assert.match(r.error?.message ?? '', /needs several hosts with the same number .* 2, 1/);
  }, { env: (r) => ({ FLEET_HOST_ID: hostOf[r] }) });
});
