export * from './harbor/index.ts';
export * as registry from './registry/index.ts';
