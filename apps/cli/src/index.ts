export * from './lib/api-client';
export * from './lib/processes';
export * from './cluster/local-cluster';
export * from './cluster/follow-job';
export * from './demo/run-demo';
