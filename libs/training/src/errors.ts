export type TrainingErrorCode =
  | 'INVALID_OPTIONS'
  | 'INVALID_BATCH'
  | 'STATE_MISMATCH'
  | 'CHECKPOINT_CORRUPT'
  | 'CHECKPOINT_NOT_FOUND'
  | 'CHECKPOINT_FAILED';

/** Every error this package throws on purpose; `code` is stable, the message says what to do. */
export class TrainingError extends Error {
  constructor(
    readonly code: TrainingErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TrainingError';
  }
}
