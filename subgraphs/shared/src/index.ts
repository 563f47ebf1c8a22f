export * from './callbacks/signature.ts';
