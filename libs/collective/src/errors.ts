export type CollectiveErrorCode = 'TIMEOUT' | 'PEER_LOST' | 'EPOCH_MISMATCH' | 'MISMATCH' | 'CLOSED';

const ADVICE: Record<CollectiveErrorCode, string> = {
  TIMEOUT: 'the named rank(s) did not send in time; close this communicator and form a new epoch without them, or raise timeoutMs',
  PEER_LOST: 'the named rank(s) disconnected; close this communicator and form a new epoch with the survivors',
  EPOCH_MISMATCH: 'ranks disagree on the membership epoch; rejoin with the current epoch',
  MISMATCH: 'ranks called different collectives or used different lengths at the same step; every rank must issue the same sequence of calls',
  CLOSED: 'the communicator is closed or failed earlier; join a new one',
};

/** Every failure of a collective. `ranks` names the rank(s) at fault (missing, lost or disagreeing). */
export class CollectiveError extends Error {
  override readonly name = 'CollectiveError';
  constructor(
    readonly code: CollectiveErrorCode,
    readonly ranks: number[],
    detail: string,
  ) {
    super(`${code}${ranks.length ? ` (rank ${ranks.join(', ')})` : ''}: ${detail}; ${ADVICE[code]}`);
  }
}
