export type ModelIoErrorCode = 'BAD_FORMAT' | 'WEIGHT_MISMATCH' | 'UNSUPPORTED_DTYPE' | 'NOT_FOUND' | 'OUTSIDE_BASE';

/** Raised when bytes or files cannot be read back into a model; `code` says why. */
export class ModelIoError extends Error {
  constructor(readonly code: ModelIoErrorCode, message: string) {
    super(message);
    this.name = 'ModelIoError';
  }
}
