import * as zmq from 'zeromq';

/**
 * ZAP (ZeroMQ RFC 27) for the data plane's CURVE sockets: libzmq asks the handler bound at
 * `inproc://zeromq.zap.01` of the socket's context whether a client's public key may connect.
 * zeromq.js has no authenticator, so this is one: a ROUTER (not a REP, so that a request can
 * wait for its answer while others are answered) dispatching on the ZAP domain, one per node.
 */

export type RefusalReason = 'unknown-key' | 'stale-key' | 'handshake';

export interface Refusal {
  reason: RefusalReason;
  /** The peer's address as libzmq reports it (tcp://ip:port, or the ipc path). */
  address: string;
  detail: string;
}

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';
/** Keys of closed epochs remembered to refuse at once (and say why), oldest forgotten first. */
const MAX_REVOKED = 65_536;
/** Connections of unknown keys waiting for a join; beyond, unknown keys are refused at once. */
const MAX_HELD = 1024;

interface Held {
  address: string;
  answer: (ok: boolean) => void;
  timer: NodeJS.Timeout;
}

/**
 * The client keys one node admits: every member key of the epochs it has joined and not yet
 * closed. A key it has not been told about waits (up to `holdMs`) instead of being refused:
 * a peer may join and connect before this node joins the same epoch, and a refused CURVE
 * client does not try again. A key of an epoch closed here is refused at once.
 */
export class CurveGate {
  private readonly allowed = new Map<string, number>();
  private readonly revoked = new Set<string>();
  private readonly held = new Map<string, Held[]>();
  private heldCount = 0;
  private closed = false;

  constructor(
    private readonly holdMs: number,
    private readonly onRefused: (r: Refusal) => void,
  ) {}

  /** Admits `keys` (hex) until as many revoke calls; answers connections waiting for them. */
  admit(keys: string[]): void {
    for (const k of keys) {
      this.allowed.set(k, (this.allowed.get(k) ?? 0) + 1);
      this.revoked.delete(k);
      const waiting = this.held.get(k);
      if (!waiting) continue;
      this.held.delete(k);
      this.heldCount -= waiting.length;
      for (const h of waiting) {
        clearTimeout(h.timer);
        h.answer(true);
      }
    }
  }

  revoke(keys: string[]): void {
    for (const k of keys) {
      const n = (this.allowed.get(k) ?? 0) - 1;
      if (n > 0) {
        this.allowed.set(k, n);
        continue;
      }
      this.allowed.delete(k);
      this.revoked.add(k);
      if (this.revoked.size > MAX_REVOKED) this.revoked.delete(this.revoked.values().next().value!);
    }
  }

  /** A ZAP request for client key `key` (hex) from `address`. */
  decide(key: string, address: string, answer: (ok: boolean) => void): void {
    if (this.allowed.has(key)) return answer(true);
    const refuse = (reason: RefusalReason, detail: string) => {
      answer(false);
      this.onRefused({ reason, address, detail });
    };
    if (this.closed) return refuse('unknown-key', 'the node is closing');
    if (this.revoked.has(key)) return refuse('stale-key', `key ${key.slice(0, 8)}… belongs to an epoch that ended here`);
    if (this.heldCount >= MAX_HELD) return refuse('unknown-key', `key ${key.slice(0, 8)}… is no member's, and ${MAX_HELD} connections already wait`);
    const h: Held = {
      address,
      answer,
      timer: setTimeout(() => {
        const q = this.held.get(key)!;
        q.splice(q.indexOf(h), 1);
        if (q.length === 0) this.held.delete(key);
        this.heldCount--;
        refuse('unknown-key', `key ${key.slice(0, 8)}… is no member's of an epoch joined here within ${this.holdMs} ms`);
      }, this.holdMs),
    };
    h.timer.unref();
    const q = this.held.get(key);
    if (q) q.push(h);
    else this.held.set(key, [h]);
    this.heldCount++;
  }

  close(): void {
    this.closed = true;
    for (const [key, q] of this.held) {
      for (const h of q) {
        clearTimeout(h.timer);
        h.answer(false);
        this.onRefused({ reason: 'unknown-key', address: h.address, detail: `key ${key.slice(0, 8)}… still unknown when the node closed` });
      }
    }
    this.held.clear();
    this.heldCount = 0;
  }
}

/** The ZAP handler of one ZeroMQ context; open while some node of the context uses CURVE. */
class ZapHandler {
  private readonly gates = new Map<string, CurveGate>();
  private readonly loop: Promise<void>;

  private constructor(private readonly router: zmq.Router) {
    this.loop = this.serve();
  }

  static async open(context: zmq.Context): Promise<ZapHandler> {
    const router = new zmq.Router({ context, linger: 0 });
    // A closed handler's inproc name is released asynchronously: retry a moment.
    for (let attempt = 0; ; attempt++) {
      try {
        await router.bind(ZAP_ENDPOINT);
        return new ZapHandler(router);
      } catch (err) {
        if ((err as { code?: string }).code !== 'EADDRINUSE' || attempt >= 50) {
          router.close();
          throw err;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  get size(): number {
    return this.gates.size;
  }

  add(domain: string, gate: CurveGate): void {
    this.gates.set(domain, gate);
  }

  remove(domain: string): void {
    this.gates.delete(domain);
  }

  async close(): Promise<void> {
    this.router.close();
    await this.loop;
  }

  private async serve(): Promise<void> {
    try {
      for await (const frames of this.router) this.answer(frames);
    } catch {
      // closed
    }
  }

  private answer(frames: Buffer[]): void {
    // [routing id, empty, version, request id, domain, address, identity, mechanism, credentials...]
    const [id, empty, version, requestId, domain, address, , mechanism, key] = frames;
    const reply = (ok: boolean) =>
      void this.router.send([id, empty, '1.0', requestId, ok ? '200' : '400', ok ? 'OK' : 'not a member of a joined epoch', '', '']).catch(() => undefined);
    const gate = this.gates.get(domain?.toString() ?? '');
    if (version?.toString() !== '1.0' || mechanism?.toString() !== 'CURVE' || !key || key.length !== 32 || !gate) return reply(false);
    gate.decide(key.toString('hex'), address.toString(), reply);
  }
}

const handlers = new Map<zmq.Context, Promise<ZapHandler>>();

/** Registers `gate` for ZAP `domain` in `context`, opening the context's handler if needed. */
export async function addGate(context: zmq.Context, domain: string, gate: CurveGate): Promise<void> {
  let h = handlers.get(context);
  if (!h) {
    h = ZapHandler.open(context);
    handlers.set(context, h);
    h.catch(() => handlers.delete(context));
  }
  (await h).add(domain, gate);
}

/** Unregisters a domain; the last one closes the handler (its pending receive would keep the process alive). */
export async function removeGate(context: zmq.Context, domain: string): Promise<void> {
  const h = handlers.get(context);
  if (!h) return;
  const handler = await h;
  handler.remove(domain);
  if (handler.size > 0) return;
  handlers.delete(context);
  await handler.close();
}
