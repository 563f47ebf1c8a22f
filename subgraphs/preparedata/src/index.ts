export { loadConfig, type PrepareDataWorkerConfig } from './config.ts';
export { startPrepareDataWorker, NOTIFICATION_PATH, type RunningPrepareDataWorker } from './worker.ts';
export * from './preparedata/index.ts';
