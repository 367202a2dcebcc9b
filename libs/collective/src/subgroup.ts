import { ackKey, ChannelApi, dataKey, Frame, groupKey, OpCtx, p2pKey } from './channel';
import type { CommunicatorImpl } from './communicator';
import { CollectiveError } from './errors';
import { hashRunId } from './header';
import type { Payload } from './peer-link';
import { Communicator, FrameType, OpKind, WireType } from './types';

/**
 * The group id every member computes alike from the members (in group order) and a name; it
 * travels in every frame's header. Never 0, which is the world's.
 */
export function groupId(worldRanks: readonly number[], name: string): number {
  return hashRunId(`${name}|${worldRanks.join(',')}`) || 1;
}

/** Checks a member list against a world of `worldSize` ranks that `self` belongs to. */
export function checkMembers(ranks: readonly number[], worldSize: number, self: number): void {
  if (!Array.isArray(ranks) || ranks.length === 0) throw new RangeError('subgroup: give the member ranks, in group order');
  const seen = new Set<number>();
  for (const r of ranks) {
    if (!Number.isInteger(r) || r < 0 || r >= worldSize) throw new RangeError(`subgroup: member ${r} is not a rank in [0, ${worldSize})`);
    if (seen.has(r)) throw new RangeError(`subgroup: rank ${r} is listed twice`);
    seen.add(r);
  }
  if (!seen.has(self)) throw new RangeError(`subgroup: rank ${self} creates a group it is not a member of (${ranks.join(', ')})`);
}

/**
 * A communicator over some ranks of a membership epoch (MPI_Comm_split): the replicas of one
 * pipeline stage, the stages of one replica, the workers of one host. It shares the world's
 * sockets, deadlines and failure: any failure, in any group, fails the whole epoch on every
 * rank, with the culprits named by their world ranks. Its own sequence numbers and mailboxes
 * (keyed by the group id) keep its operations apart from the world's and other groups'.
 * Creating one needs no messages: every member calls subgroup() with the same list and name,
 * and frames that arrive before a member has created it wait in the world's mailbox.
 */
export class SubCommunicator extends ChannelApi implements Communicator {
  readonly rank: number;
  readonly worldSize: number;
  readonly epoch: number;
  readonly runId: string;
  readonly pieceElements: number;
  readonly hostOfRank: readonly string[];
  private seq = 0;
  private closed = false;

  constructor(
    private readonly world: CommunicatorImpl,
    /** World rank of each member, index = rank in this group. */
    readonly members: readonly number[],
    readonly id: number,
  ) {
    super();
    this.rank = members.indexOf(world.rank);
    this.worldSize = members.length;
    this.epoch = world.epoch;
    this.runId = world.runId;
    this.pieceElements = world.pieceElements;
    this.hostOfRank = members.map((m) => world.hostOfRank[m]);
  }

  subgroup(ranks: number[], name = ''): Communicator {
    checkMembers(ranks, this.worldSize, this.rank);
    return this.world.subgroup(ranks.map((r) => this.members[r]), name);
  }

  /** Marks this view closed; the world's sockets stay until the communicator itself is closed. */
  async close(): Promise<void> {
    this.closed = true;
  }

  beginOp(op: OpKind, total: number, wire: WireType, timeoutMs?: number): OpCtx {
    this.assertUsable();
    return this.world.openOp(++this.seq, op, total, wire, timeoutMs);
  }
  beginLooseOp(timeoutMs?: number): OpCtx {
    this.assertUsable();
    return this.world.beginLooseOp(timeoutMs);
  }
  endOp(ctx: OpCtx): void {
    this.world.endOp(ctx);
  }
  collectIfDue(): void {
    this.world.collectIfDue();
  }
  sendFrame(to: number, type: FrameType, ctx: OpCtx | null, step: number, piece: number, tag: number, total: number, payload?: Payload, wire?: WireType): Promise<void> {
    return this.world.sendRaw(this.members[to], this.id, type, ctx, step, piece, tag, total, payload, wire);
  }
  wait(key: string, from: number, ctx: OpCtx | null): Promise<Frame> {
    if (this.closed) return Promise.reject(new CollectiveError('CLOSED', [], 'sub-communicator closed'));
    return this.world.wait(key, this.members[from], ctx);
  }
  take(key: string): Frame | null {
    this.assertUsable();
    return this.world.take(key);
  }
  check(f: Frame, ctx: OpCtx, expectBytes: number | null, tag = 0): Buffer {
    return this.world.check(f, ctx, expectBytes, tag);
  }
  assertUsable(): void {
    this.world.assertUsable();
    if (this.closed) throw new CollectiveError('CLOSED', [], 'sub-communicator closed');
  }
  dataKey(seq: number, step: number, piece: number, src: number): string {
    return groupKey(this.id, dataKey(seq, step, piece, this.members[src]));
  }
  ackKey(seq: number, src: number): string {
    return groupKey(this.id, ackKey(seq, this.members[src]));
  }
  p2pKey(src: number, tag: number): string {
    return groupKey(this.id, p2pKey(this.members[src], tag));
  }
}
