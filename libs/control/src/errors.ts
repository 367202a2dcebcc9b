export class ControlPlaneError extends Error {
  constructor(message: string, readonly code: 'BAD_OPTIONS' | 'NOT_FOUND' | 'BAD_RECORD' | 'REDIS_ACCESS') {
    super(message);
    this.name = 'ControlPlaneError';
  }
}
