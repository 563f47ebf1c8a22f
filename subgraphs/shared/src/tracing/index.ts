export * from './tracing.ts';
export * from './fastify.ts';
