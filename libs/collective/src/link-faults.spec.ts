// Collectives over faulty links between simulated hosts (network namespaces, see
// testing/netns.ts): a shaped link that also drops packets (iptables `statistic`, no netem
// here) still gives the exact result; a link cut mid-all-reduce (`ip link set down`) gives
// every rank a typed error within the deadline and lets go of its connections, and once the
// link is back a new membership epoch all-reduces correctly. Skipped, with the reason, where
// namespaces cannot be made (not root).
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { joinAll, RankProcess, runAll } from './testing/harness';
import { clearLinkLoss, cutLink, droppedPackets, hostPlacement, linkIsUp, netnsUnavailable, restoreLink, setLinkLoss, SimulatedHost, withHostNetwork } from './testing/netns';
import { assertAllReduce, ok, untilEveryRankEmitted, withRanks } from './testing/spec-helpers';

const unavailable = netnsUnavailable();
const skip = unavailable ? `network namespaces are not available: ${unavailable}` : false;
let runCounter = 0;
const runId = () => `linkfault-${process.pid}-${++runCounter}`;
// unique per test and process: other engineers run namespace tests on this machine at once
const tag = (t: string) => `${t}${process.pid % 10000}`;

test('the control link: hosts reach the root namespace on it with their data link cut, and not each other; bad loss settings are refused', { skip }, async () => {
  await withHostNetwork({ hosts: 2, rateMbit: 100, tag: tag('p'), controlPlane: true }, async (net) => {
    const [a, b] = net.hosts;
    assert.match(net.rootIp!, /^10\.(7[89]|8\d|9[0-7])\.\d{1,3}\.254$/);
    assert.equal(a.controlIp, net.rootIp!.replace(/254$/, '1'));
    const server = createServer((s) => s.end('pong'));
    await new Promise<void>((res) => server.listen(0, net.rootIp, () => res()));
    const port = (server.address() as { port: number }).port;
    // a peer's data address, listened on inside that host
    const peer = execFile(b.exec[0], [...b.exec.slice(1), process.execPath, '-e', `require('net').createServer((s) => s.end('peer')).listen(7000, '${b.ip}', () => console.log('up'))`]);
    await new Promise<void>((res) => peer.stdout!.once('data', () => res()));
    try {
      assert.equal(await reach(a, net.rootIp!, port), 'pong');
      assert.equal(await reach(a, b.ip, 7000), 'peer');
      cutLink(a);
      assert.equal(linkIsUp(a), false);
      assert.equal(await reach(a, net.rootIp!, port), 'pong', 'the control plane stays up when the data link is cut');
      assert.equal(await reach(a, b.ip, 7000), 'unreachable', 'a cut data link carries nothing to the other host');
      restoreLink(a);
      assert.equal(await reach(a, b.ip, 7000), 'peer', 'the restored link carries traffic again');
    } finally {
      peer.kill();
      server.close();
    }
    assert.throws(() => setLinkLoss(a, 0), /probability must be in \(0, 1\), got 0/);
    assert.throws(() => setLinkLoss(a, 1.5), /probability must be in \(0, 1\)/);
  });
});

test('a shaped link losing 1% and then 2.5% of packets each way (~2% and ~5% between hosts): ring and hierarchical all-reduce exact and bitwise equal on every rank', { skip }, async (t) => {
  await withHostNetwork({ hosts: 2, rateMbit: 200, tag: tag('l') }, async (net) => {
    await withRanks(4, async (procs) => {
      await joinAll(procs, runId(), 1, 20_000);
      const hosts = procs.map((p) => p.address.hostId);
      const lens = [1, 7919, 2 ** 19 + 3];
      const cases = lens.flatMap((len) => (['sum', 'mean'] as const).flatMap((op) => (['ring', 'hierarchical'] as const).map((algorithm) => ({ len, op, wire: 'fp32', algorithm }))));
      for (const [k, each] of [0.01, 0.025].entries()) {
        // on both hosts, in both directions: a packet between them is dropped with ~2 * each
        for (const h of net.hosts) setLinkLoss(h, each);
        const t0 = Date.now();
        assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 21 + k, cases, hosts }))));
        // the flat ring without host ids too (the path a single-algorithm caller takes)
        assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 31 + k, cases: [{ len: 2 * 524288 + 5, op: 'sum', wire: 'fp32' }] }))));
        const dropped = net.hosts.map(droppedPackets); // setLinkLoss starts the counters again
        t.diagnostic(`${each * 100}% each way: ${cases.length + 1} all-reduces in ${Date.now() - t0} ms, the loss rules dropped ${dropped.join(' and ')} packets on the two hosts`);
        assert.ok(dropped.every((d) => d > 0), `the loss rules dropped ${dropped.join(' and ')} packets: loss is not applied`);
      }
    }, hostPlacement(net, 2));
    for (const h of net.hosts) clearLinkLoss(h);
    assert.equal(droppedPackets(net.hosts[0]), 0, 'clearLinkLoss removes the rules');
  });
});

for (const algorithm of ['ring', 'hierarchical'] as const) {
  test(`${algorithm} all-reduce, link cut mid-operation: typed error on every rank within the deadline, connections released; restored, a new epoch is correct`, { skip }, async (t) => {
    const netTag = tag(algorithm === 'ring' ? 'r' : 'h');
    await withHostNetwork({ hosts: 2, rateMbit: 500, tag: netTag }, async (net) => {
      await withRanks(4, async (procs) => {
        const timeoutMs = 3000;
        const run = runId();
        await joinAll(procs, run, 1, timeoutMs);
        const hosts = procs.map((p) => p.address.hostId);
        const established = await outgoingTcp(procs);
        assert.ok(established.every((n) => n > 0), `every rank has tcp connections to the other host before the cut: ${established}`);

        const loops = procs.map((p) => p.request({ cmd: 'run', scenario: 'loop', params: { len: 1_000_000, iters: 100000, hosts, algorithm } }));
        await untilEveryRankEmitted(procs, loops);
        const t0 = Date.now();
        cutLink(net.hosts[1]);
        const res = await Promise.all(loops);
        const elapsed = Date.now() - t0;
        t.diagnostic(`${res.map((r) => `${r.result?.code} after ${r.result?.opMs?.toFixed(0)} ms`).join(', ')}; all within ${elapsed} ms of the cut (deadline ${timeoutMs} ms)`);
        for (const [r, x] of res.entries()) {
          assert.ok(x.ok, `rank ${r}: ${x.error?.message}`);
          assert.ok(['PEER_LOST', 'TIMEOUT'].includes(x.result.code), `rank ${r}: not a typed error: ${JSON.stringify(x.result)}`);
          assert.ok(x.result.ranks.length > 0, `rank ${r}: the error names no rank`);
        }
        // one deadline (the op in flight started before the cut) plus the suspicion grace,
        // plus slack for a loaded machine; a hang would take the whole 100000 iterations
        const bound = timeoutMs + 3000;
        assert.ok(elapsed < bound, `errors took ${elapsed} ms after the cut, bound ${bound} ms (deadline ${timeoutMs} ms)`);

        ok(await Promise.all(procs.map((p) => p.request({ cmd: 'close' }))));
        // ZeroMQ closes in its I/O thread, after close() returns: give it a few seconds
        let left = await outgoingTcp(procs);
        for (let i = 0; i < 50 && left.some((n) => n > 0); i++) {
          await new Promise((r) => setTimeout(r, 100));
          left = await outgoingTcp(procs);
        }
        assert.deepEqual(left, [0, 0, 0, 0], 'closing the failed communicator closes its outgoing tcp connections on every rank');

        restoreLink(net.hosts[1]);
        assert.ok(linkIsUp(net.hosts[1]));
        await joinAll(procs, run, 2, 20_000);
        const cases = [7919, 2 ** 20 + 3].flatMap((len) => [{ len, op: 'sum', wire: 'fp32', algorithm }, { len, op: 'mean', wire: 'fp32', algorithm }]);
        assertAllReduce(ok(await runAll(procs, 'allreduce', () => ({ seed: 31, cases, hosts }))));
      }, hostPlacement(net, 2));
    });
    // the old epoch's closed connections may still retransmit in a namespace that has lost its
    // name; its links must be gone from the root namespace all the same
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    assert.ok(!links.includes(`tf${netTag}`) && !links.includes(`tfbr${netTag}`), `links of ${netTag} left behind:\n${links}`);
  });
}

/** What a tcp connection from inside `host` to `ip:port` reads, or 'unreachable' (1.5 s to connect). */
async function reach(host: SimulatedHost, ip: string, port: number): Promise<string> {
  const script = `const s = require('net').connect(${port}, '${ip}'); let d = ''; s.setTimeout(1500, () => { console.log('unreachable'); process.exit(0); }); s.on('data', (x) => (d += x)); s.on('end', () => { console.log(d); process.exit(0); }); s.on('error', () => { console.log('unreachable'); process.exit(0); });`;
  const { stdout } = await promisify(execFile)(host.exec[0], [...host.exec.slice(1), process.execPath, '-e', script]);
  return stdout.trim();
}

/** Per rank: tcp sockets it opened itself (not its listening socket or connections accepted on it). */
async function outgoingTcp(procs: RankProcess[]): Promise<number[]> {
  const replies = ok(await runAll(procs, 'tcpSockets'));
  return replies.map((r: { listenPort: number; sockets: { localPort: number; state: string }[] }) => r.sockets.filter((s) => s.localPort !== r.listenPort).length);
}
