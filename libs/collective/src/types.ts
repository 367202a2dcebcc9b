import type { CurveMode, JoinCurve } from './curve';
import type { Refusal } from './zap';

/** Frame types on the wire. One enum so the receive loop dispatches on a single byte. */
export enum FrameType {
  Hello = 1,
  Data = 2,
  Ack = 3,
  P2P = 4,
  Abort = 5,
  Report = 6,
  Bye = 7,
}

/** The collective a Data frame belongs to; compared across ranks to catch mismatched calls. */
export enum OpKind {
  None = 0,
  AllReduce = 1,
  Broadcast = 2,
  Barrier = 3,
  AllGather = 4,
  /** The halves of a ring all-reduce on their own (ring-phases.ts, the hierarchical all-reduce within a host). */
  ReduceScatter = 5,
  GatherSegments = 6,
}

/** Element encoding of a payload on the wire. */
export enum WireType {
  Bytes = 0,
  F32 = 1,
  F16 = 2,
  BF16 = 3,
}

export type Wire = 'fp32' | 'fp16' | 'bf16';
export type ReduceOp = 'sum' | 'mean';

/** Where a node listens; JSON-serialisable, goes into the worker registry. */
export interface PeerAddress {
  /** Same hostId => peers talk over ipc:// instead of tcp://. */
  hostId: string;
  tcp: string;
  ipc: string | null;
  /**
   * Present when the node demands CURVE: its server public key (hex) and on which endpoints
   * (`tcp`: tcp only, `all`: ipc too). Absent: plain ZeroMQ everywhere.
   */
  curve?: { key: string; mode: Exclude<CurveMode, 'off'> } | null;
}

export interface ListenOptions {
  /** Interface to bind tcp on. Default '0.0.0.0' (env FLEET_COLLECTIVE_HOST). */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Host name or IP others dial; default `host`, or the first non-internal IPv4 when `host` is a wildcard. */
  advertiseHost?: string;
  /** Also bind an ipc:// endpoint under os.tmpdir(). Default true. */
  ipc?: boolean;
  /**
   * A young-generation GC after every this many received bytes, between operations, frees
   * received frames before V8 answers their external memory with full collections (see
   * young-gc.ts). Default 16 MB; 0 turns it off.
   */
  minorGcEveryBytes?: number;
  /** Which endpoints demand CURVE (curve.ts). Default env FLEET_COLLECTIVE_CURVE, else `tcp`. */
  curve?: CurveMode;
  /**
   * How long a CURVE connection with a key no joined epoch lists waits for a join that lists
   * it (a peer may connect before this node joins) before it is refused. Default 60000 ms.
   */
  curveHoldMs?: number;
  /** Every refused connection (a key of no joined epoch, of an ended epoch, or a failed CURVE handshake). */
  onRefused?: (r: Refusal) => void;
}

export interface JoinOptions {
  runId: string;
  /** Membership epoch; every change of membership makes a new one. */
  epoch: number;
  rank: number;
  worldSize: number;
  /** Addresses of every rank, index = rank (our own included). */
  peers: PeerAddress[];
  /** Deadline of every operation, join included. Default 60000 ms. */
  timeoutMs?: number;
  /** Elements per pipelined piece of a ring step. Default 524288 (2 MB of fp32). */
  pieceElements?: number;
  /** Optional observer for diagnostics; the library logs nothing itself. */
  onEvent?: (e: CollectiveEvent) => void;
  /**
   * This epoch's CURVE keys (from the assignment). Required when a peer's endpoint that this
   * rank dials demands CURVE; the node admits the peers' keys while the epoch lasts.
   */
  curve?: JoinCurve;
}

export interface CollectiveEvent {
  kind: 'peer-disconnect' | 'abort-sent' | 'abort-received' | 'stale-dropped' | 'failed' | 'refused';
  rank?: number;
  detail?: string;
}

/** How an all-reduce travels: one flat ring, or the pipelined hierarchical one (hierarchical.ts). */
export type AllReduceAlgorithm = 'ring' | 'hierarchical';

export interface AllReduceOptions {
  /** Default 'sum'. */
  op?: ReduceOp;
  /**
   * 'auto': chosen per call from the ranks' host ids and the size (hierarchical.ts,
   * chooseAlgorithm), what the trainer uses. Default 'ring', the flat ring whatever the hosts.
   */
  algorithm?: AllReduceAlgorithm | 'auto';
  /** Encoding on the wire; additions always happen in fp32. Default 'fp32'. */
  wire?: Wire;
  /** Overrides the communicator's deadline for this call. */
  timeoutMs?: number;
}

export interface AllReduceManyOptions extends AllReduceOptions {
  /** Bucket size for tensor fusion. Default 25 MB (as PyTorch DDP). */
  bucketBytes?: number;
}

export interface Communicator {
  readonly rank: number;
  readonly worldSize: number;
  readonly epoch: number;
  readonly runId: string;
  allReduce(buf: Float32Array, opts?: AllReduceOptions): Promise<Float32Array>;
  allReduceMany(bufs: Float32Array[], opts?: AllReduceManyOptions): Promise<Float32Array[]>;
  broadcast(buf: Uint8Array | Float32Array | null, root: number, opts?: { timeoutMs?: number }): Promise<Uint8Array>;
  barrier(opts?: { timeoutMs?: number }): Promise<void>;
  allGather(value: unknown, opts?: { timeoutMs?: number }): Promise<unknown[]>;
  /** Zero-copy: do not modify `buf` after the call (tfjs dataSync() arrays are fresh each time). */
  send(peer: number, tag: number, buf: Uint8Array | Float32Array): Promise<void>;
  recv(peer: number, tag: number, opts?: { timeoutMs?: number }): Promise<Uint8Array>;
  /**
   * A communicator over some of these ranks (`ranks` in group order; this rank among them),
   * e.g. the replicas of one pipeline stage. Every member calls it with the same ranks and
   * name; no message is exchanged. It shares this communicator's sockets, deadlines and
   * failure: an error in any group fails every group of the epoch, naming world ranks.
   * Closing it closes only the view.
   */
  subgroup(ranks: number[], name?: string): Communicator;
  /** Host id of each rank (PeerAddress.hostId), which the topology-aware all-reduce groups by. */
  readonly hostOfRank: readonly string[];
  /** All-reduce calls made on this communicator so far, by the algorithm that ran them. */
  readonly allReduceCalls: Readonly<Record<AllReduceAlgorithm, number>>;
  close(): Promise<void>;
}
