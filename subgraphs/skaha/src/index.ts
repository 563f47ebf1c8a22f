export * from './skaha/index.ts';
export { loadConfig, type CallbackMode, type SkahaWorkerConfig } from './config.ts';
export { startSkahaWorker, type RunningSkahaWorker, type StartOptions } from './worker.ts';
export {
  skahaResourcesFor,
  stepComputeOf,
  type SkahaResources,
  type StepCompute,
} from './resources/mapping.ts';
