/** Base class of every error this package throws; `code` is stable for callers to switch on. */
export class DataError extends Error {
  constructor(
    readonly code: 'BAD_OPTIONS' | 'NO_MANIFEST' | 'BAD_MANIFEST' | 'TAR_TRUNCATED' | 'TAR_CORRUPT' | 'INGEST' | 'STORE' | 'S3_UNREACHABLE' | 'S3_TLS',
    message: string,
  ) {
    super(message);
    this.name = 'DataError';
  }
}

export function badOption(name: string, value: unknown, expected: string): DataError {
  return new DataError('BAD_OPTIONS', `${name} must be ${expected} (got ${JSON.stringify(value)})`);
}
