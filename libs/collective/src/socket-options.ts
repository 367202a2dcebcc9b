import * as zmq from 'zeromq';

/**
 * Sockets of the data plane. The library's sockets and the benchmark's raw point-to-point
 * test take their options from here, so that the ceiling is measured with what the ring uses.
 */

let context: zmq.Context | null = null;

/**
 * A context of the library's own with two I/O threads. libzmq gives each new connection to
 * its least loaded I/O thread, so a rank's incoming (PULL) and outgoing (PUSH) connections are
 * copied to and from the kernel by different threads at once. Measured at world size 2 over
 * ipc on 2 cores: +10-15% throughput for the raw two-way exchange and for the ring, the same
 * CPU. Its own context also leaves the process-wide zeromq.js context as the host set it.
 */
export function dataContext(): zmq.Context {
  return (context ??= new zmq.Context({ ioThreads: 2 }));
}

/** Outgoing PUSH socket, one per peer. */
export function pushOptions() {
  // payloads are zero-copy views, bounded by the operation's size: never block a send
  return { context: dataContext(), sendHighWaterMark: 0 };
}

/** The node's PULL socket, which every peer connects to. */
export function pullOptions() {
  return { context: dataContext(), receiveHighWaterMark: 0 };
}

/** A raw 32-byte CURVE key as a socket option: zeromq.js' setter takes Buffers, its typings say string only. */
export function zmqKey(raw: Buffer): string {
  return raw as unknown as string;
}
