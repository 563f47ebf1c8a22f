/** Names for the IVOA document types, taken from the generated OpenAPI types. */
import type { components } from './generated/openapi.ts';

type Schemas = components['schemas'];
export type ExecutionRequest = Schemas['ExecutionRequest'];
export type ExecutionSession = Schemas['AbstractExecutionSession'];
export type ScheduledExecutionSession = Schemas['ScheduledExecutionSession'];
export type OfferSetResponse = Schemas['OfferSetResponse'];
export type Update = Schemas['AbstractUpdate'];
export type EnumValueUpdate = Schemas['EnumValueUpdate'];
export type Option = Schemas['AbstractOption'];
export type Executable = Schemas['AbstractExecutable'];
export type DockerContainer = Schemas['DockerContainer'];
export type JupyterNotebook = Schemas['JupyterNotebook'];
export type ComputeResource = Schemas['AbstractComputeResource'];
export type SimpleComputeResource = Schemas['SimpleComputeResource'];
export type VolumeMount = Schemas['AbstractVolumeMount'];
export type StorageResource = Schemas['AbstractStorageResource'];
export type DataResource = Schemas['AbstractDataResource'];
export type SkaoDataResource = Schemas['SkaoDataResource'];
export type ComponentMetadata = Schemas['ComponentMetadata'];
export type MessageItem = Schemas['MessageItem'];
export type SessionPhase = Schemas['SessionPhase'];
export type LifecyclePhase = Schemas['LifecyclePhase'];
export type Schedule = Schemas['Schedule'];
export type SessionConnector = Schemas['SessionConnector'];
export type PhaseChange = Schemas['PhaseChange'];
export type ErrorResponse = Schemas['ErrorResponse'];
