/**
 * How a buffer is cut for the ring: `n` segments of near-equal length (one per rank), each
 * cut into the same number of pieces so sends, receives and additions pipeline piece by piece.
 */
export class RingLayout {
  readonly pieces: number;
  constructor(
    readonly length: number,
    readonly segments: number,
    pieceElements: number,
  ) {
    const maxSeg = Math.ceil(length / segments);
    this.pieces = Math.max(1, Math.ceil(maxSeg / pieceElements));
  }

  segmentStart(i: number): number {
    return Math.floor((i * this.length) / this.segments);
  }

  /** [start, end) of piece j of segment i. */
  piece(i: number, j: number): [number, number] {
    const s = this.segmentStart(i);
    const len = this.segmentStart(i + 1) - s;
    return [s + Math.floor((j * len) / this.pieces), s + Math.floor(((j + 1) * len) / this.pieces)];
  }
}

export function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
