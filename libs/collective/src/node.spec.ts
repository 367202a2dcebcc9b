import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CollectiveError, CollectiveNode, curveMembers } from './index';

test('world size 1 in process; epochs must grow; close is idempotent and later calls fail CLOSED', async () => {
  const node = await CollectiveNode.listen({ host: '127.0.0.1' });
  try {
    assert.match(node.address.tcp, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    assert.match(node.address.ipc ?? '', /^ipc:\/\//);
    const base = { runId: 'r', rank: 0, worldSize: 1, peers: [node.address] };
    const comm = await node.join({ ...base, epoch: 2 });
    const buf = new Float32Array([1, 2, 3]);
    assert.equal(await comm.allReduce(buf, { op: 'mean' }), buf);
    assert.deepEqual(Array.from(buf), [1, 2, 3]);
    assert.deepEqual(await comm.allGather({ a: 1 }), [{ a: 1 }]);
    assert.deepEqual(Array.from(await comm.broadcast(new Uint8Array([4]), 0)), [4]);
    await comm.barrier();
    await assert.rejects(node.join({ ...base, epoch: 2 }), (e: CollectiveError) => e.code === 'EPOCH_MISMATCH');
    await assert.rejects(node.join({ ...base, epoch: 1 }), (e: CollectiveError) => e.code === 'EPOCH_MISMATCH');
    await assert.rejects(node.join({ ...base, rank: 1 }  as never), RangeError);
    await comm.close();
    await comm.close();
    await assert.rejects(comm.allReduce(buf), (e: CollectiveError) => e.code === 'CLOSED');
    const next = await node.join({ ...base, epoch: 3 });
    assert.equal(next.epoch, 3);
  } finally {
    await node.close();
    await node.close();
  }
});

test('join times out naming the rank that never came', async () => {
  const a = await CollectiveNode.listen({ host: '127.0.0.1' });
  const b = await CollectiveNode.listen({ host: '127.0.0.1' });
  try {
    const t0 = Date.now();
    await assert.rejects(
      a.join({ runId: 'x', epoch: 1, rank: 0, worldSize: 2, peers: [a.address, b.address], timeoutMs: 500 }),
      (e: CollectiveError) => e.code === 'TIMEOUT' && e.ranks.join() === '1',
    );
    assert.ok(Date.now() - t0 < 1500);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a rank joining an epoch older than its peers gets EPOCH_MISMATCH, not a hang', async () => {
  const a = await CollectiveNode.listen({ host: '127.0.0.1' });
  const b = await CollectiveNode.listen({ host: '127.0.0.1' });
  try {
    const peers = [a.address, b.address];
    const t0 = Date.now();
    const ahead = a.join({ runId: 'm', epoch: 5, rank: 0, worldSize: 2, peers, timeoutMs: 3000 });
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(
      b.join({ runId: 'm', epoch: 4, rank: 1, worldSize: 2, peers, timeoutMs: 3000 }),
      (e: CollectiveError) => e.code === 'EPOCH_MISMATCH' && e.ranks.join() === '0',
    );
    assert.ok(Date.now() - t0 < 1000, 'fails fast, well before the deadline');
    await assert.rejects(ahead, (e: CollectiveError) => e.code === 'TIMEOUT' && e.ranks.join() === '1');
  } finally {
    await a.close();
    await b.close();
  }
});

test('default listen (all interfaces, advertised IPv4) carries an all-reduce over tcp between two "hosts"', async () => {
  const saved = process.env.FLEET_HOST_ID;
  process.env.FLEET_HOST_ID = 'spec-host-a';
  const a = await CollectiveNode.listen();
  process.env.FLEET_HOST_ID = 'spec-host-b';
  const b = await CollectiveNode.listen({ ipc: false });
  if (saved === undefined) delete process.env.FLEET_HOST_ID;
  else process.env.FLEET_HOST_ID = saved;
  try {
    assert.notEqual(a.address.hostId, b.address.hostId);
    assert.equal(b.address.ipc, null);
    assert.match(a.address.tcp, /^tcp:\/\/\d+\.\d+\.\d+\.\d+:\d+$/);
    const peers = [a.address, b.address];
    // tcp demands CURVE by default: without this epoch's keys the join says what is missing
    assert.equal(a.address.curve?.mode, 'tcp');
    await assert.rejects(a.join({ runId: 't0', epoch: 0, rank: 0, worldSize: 2, peers, timeoutMs: 5000 }), /rank 1's endpoint tcp:\/\/.* demands CURVE/);
    const curve = curveMembers(2);
    const [ca, cb] = await Promise.all([
      a.join({ runId: 't', epoch: 0, rank: 0, worldSize: 2, peers, timeoutMs: 5000, curve: curve[0] }),
      b.join({ runId: 't', epoch: 0, rank: 1, worldSize: 2, peers, timeoutMs: 5000, curve: curve[1] }),
    ]);
    const x = new Float32Array(1001).map((_, i) => i);
    const y = new Float32Array(1001).map((_, i) => 2 * i);
    await Promise.all([ca.allReduce(x, { op: 'mean' }), cb.allReduce(y, { op: 'mean' })]);
    for (let i = 0; i < x.length; i++) assert.equal(x[i], Math.fround((3 * i) / 2));
    assert.deepEqual(Array.from(y), Array.from(x));
  } finally {
    await a.close();
    await b.close();
  }
});
