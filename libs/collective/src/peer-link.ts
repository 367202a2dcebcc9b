import * as zmq from 'zeromq';
import { pushOptions, zmqKey } from './socket-options';

export interface PeerLinkOptions {
  endpoint: string;
  heartbeatMs: number;
  onDisconnect: () => void;
  /** CURVE client keys (raw 32 bytes each) when the peer's endpoint demands CURVE. */
  curve?: { serverKey: Buffer; publicKey: Buffer; secretKey: Buffer };
  /** The peer refused our CURVE handshake (our key is not of an epoch it joined, or its server key is not the one advertised). */
  onRefused?: (detail: string) => void;
}

export type Payload = Buffer | Uint8Array | Uint16Array | Float32Array;

/**
 * Outgoing PUSH socket to one peer. zeromq.js allows one send in flight per socket, so sends
 * are chained; payloads are handed over without copying.
 */
export class PeerLink {
  private readonly push: zmq.Push;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  private connected = false;
  error: unknown = null;

  constructor(opts: PeerLinkOptions) {
    this.push = new zmq.Push({
      ...pushOptions(),
      linger: 0,
      heartbeatInterval: opts.heartbeatMs,
      heartbeatTimeout: opts.heartbeatMs * 4,
      heartbeatTimeToLive: opts.heartbeatMs * 4,
      ...(opts.curve ? { curveServerKey: zmqKey(opts.curve.serverKey), curvePublicKey: zmqKey(opts.curve.publicKey), curveSecretKey: zmqKey(opts.curve.secretKey) } : {}),
    });
    if (opts.curve && opts.onRefused) {
      const refused = opts.onRefused;
      this.push.events.on('handshake:error:auth', (e) => !this.closed && refused(`authentication: ${e.error.message}`));
      this.push.events.on('handshake:error:protocol', (e) => !this.closed && refused(`CURVE handshake: ${e.error.message}`));
    }
    this.push.events.on('connect', () => {
      this.connected = true;
    });
    this.push.events.on('disconnect', () => {
      if (this.connected && !this.closed) opts.onDisconnect();
    });
    this.push.connect(opts.endpoint);
  }

  send(header: Buffer, payload?: Payload): Promise<void> {
    if (this.closed) return Promise.resolve();
    const frames = payload ? [header, payload] : [header];
    const next = this.chain.then(() => (this.closed ? undefined : this.push.send(frames)));
    this.chain = next.catch((err) => {
      this.error ??= err;
    });
    return this.chain;
  }

  /** Waits (at most `ms`) until queued sends are handed to ZeroMQ. */
  async flush(ms: number): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.chain, new Promise<void>((res) => (t = setTimeout(res, ms)))]);
    clearTimeout(t);
  }

  close(lingerMs: number): void {
    if (this.closed) return;
    this.closed = true;
    this.push.linger = lingerMs;
    this.push.close();
  }
}
