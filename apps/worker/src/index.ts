export * from './config';
export * from './fleet-worker';
export * from './training-run';
