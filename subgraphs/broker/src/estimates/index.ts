/**
 * Preparation-time estimation for offers: record what preparation actions took, and estimate a
 * median and a calibrated bound for the next ones. docs/estimation.md describes the method.
 */
export { referenceSeconds } from './actions.ts';
export {
  createEstimator,
  type ComponentEstimate,
  type Estimator,
  type EstimatorOptions,
  type PreparationEstimate,
  type PreparationRequest,
} from './estimator.ts';
export { evaluate, summary, type Evaluation, type Score, type Scores } from './evaluation.ts';
export { generateTrace, type SyntheticOptions } from './synthetic.ts';
export {
  formatObservation,
  parseLine,
  parseObservation,
  readTrace,
  TraceError,
  writeTrace,
} from './trace.ts';
export * from './types.ts';
