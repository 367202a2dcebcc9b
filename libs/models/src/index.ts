export * from './backend';
export * from './zoo';
export * from './io';
export * from './bench';
