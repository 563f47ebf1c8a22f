export * from './skaha/index.ts';
