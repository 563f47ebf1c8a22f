import type DataLoader from 'dataloader';
import type { Identity } from '@srcnet/service-kit';
import type { HistoryRecord, OfferSetRecord, StepRecord } from '../steps/model.ts';
import type { Broker } from '../steps/service.ts';

/** What every resolver of one request sees: the caller, the broker, and per-request batch loaders. */
export interface BrokerContext {
  identity: Identity;
  broker: Broker;
  baseUrl: string;
  steps: DataLoader<string, StepRecord | undefined>;
  history: DataLoader<string, HistoryRecord[]>;
  offerSets: DataLoader<string, OfferSetRecord | undefined>;
}
