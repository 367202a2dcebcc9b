/**
 * Socket options of the data plane, shared by the library's sockets and the benchmark's raw
 * point-to-point test, so that the ceiling is measured with exactly what the ring uses.
 */

/** Outgoing PUSH socket, one per peer. */
export const PUSH_OPTIONS = {
  // payloads are zero-copy views, bounded by the operation's size: never block a send
  sendHighWaterMark: 0,
};

/** The node's PULL socket, which every peer connects to. */
export const PULL_OPTIONS = {
  receiveHighWaterMark: 0,
};
