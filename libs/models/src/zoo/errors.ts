export type ModelErrorCode = 'UNKNOWN_MODEL' | 'DUPLICATE_MODEL' | 'OPTION_CONFLICT' | 'UNKNOWN_OPTION' | 'INVALID_OPTION' | 'INPUT_TOO_SMALL';

/** Raised by the zoo for bad names, options and input sizes; `code` says which. */
export class ModelError extends Error {
  constructor(readonly code: ModelErrorCode, message: string) {
    super(message);
    this.name = 'ModelError';
  }
}
