import { createConnection, createServer, type Socket } from 'node:net';

export interface TcpForward {
  /** The port it listens on (at the address it was asked to listen on). */
  port: number;
  /** Stops listening and closes every forwarded connection. */
  close(): Promise<void>;
}

/**
 * Listens on `listenHost` (port 0: a free one) and pipes every connection to
 * `targetHost:targetPort`. The test services bind 127.0.0.1 of the root namespace, which a
 * network namespace cannot reach; a forward on the root namespace's address on the control
 * bridge (see HostNetwork.rootIp) lets workers inside the simulated hosts use them as they are.
 */
export async function forwardTcp(listenHost: string, targetHost: string, targetPort: number): Promise<TcpForward> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: targetHost, port: targetPort });
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      // one side's error ends both; the peer of a forwarded connection sees a reset, as on a real link
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, listenHost, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((resolve) => {
      for (const s of open) s.destroy();
      server.close(() => resolve());
    }),
  };
}
