export * from './callbacks/signature.ts';
export * from './identity/identity.ts';
export * from './pubsub/pubsub.ts';
export * from './config/env.ts';
export * from './documents/nesting.ts';
export * from './random/random.ts';
export * from './tracing/index.ts';
