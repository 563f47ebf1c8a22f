/**
 * The SRCNet ExecutionStep model: the IVOA ExecutionBroker 1.0.7 schema as OpenAPI building blocks
 * (see ../openapi), the types generated from it, and the run-time pieces every service shares:
 * validation, the upgrade of older documents, kind aliases, and the IVOA <-> GraphQL converter.
 */
export type * as Ivoa from './ivoa.ts';
export type * as GraphQL from './generated/graphql.ts';
export {
  KINDS,
  KIND_ALIASES,
  KIND_BASE,
  canonicalKind,
  schemaNameForKind,
  kindsOf,
  openapi,
} from './kinds.ts';
export {
  validateExecutionRequest,
  validateUpdate,
  validateExecutionStep,
  validateOfferSet,
  validateWorkerCommand,
  validateComponentCallback,
  canonicalizeKinds,
  formatIssues,
  type ValidationIssue,
  type ValidationResult,
} from './validate.ts';
export { upgradeExecutionRequest, upgradeUpdate, type UpgradeResult } from './upgrade.ts';
export { stepToGraphQL, offerSetToGraphQL, fromGraphQL } from './convert.ts';
export {
  parseDocument,
  serializeDocument,
  formatOf,
  MEDIA_TYPES,
  DocumentSyntaxError,
  type DocumentFormat,
} from './documents.ts';
export { brokerSubgraphSdl, brokerApiSdl } from './api-schema.ts';
