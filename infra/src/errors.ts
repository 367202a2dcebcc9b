/** Every error this package throws; `code` is stable for callers to switch on. */
export class InfraError extends Error {
  constructor(
    readonly code: 'BAD_OPTIONS' | 'BAD_ENV' | 'START_FAILED' | 'STOP_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'InfraError';
  }
}
