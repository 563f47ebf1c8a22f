export * from './types.ts';
export * from './mapping.ts';
export * from './request.ts';
export * from './client.ts';
export * from './callbacks.ts';
export * from './sources.ts';
