import { MemPubSub, type PubSub } from '@graphql-hive/pubsub';
import { RedisPubSub } from '@graphql-hive/pubsub/redis';
import { Redis } from 'ioredis';

/**
 * The pub/sub every service publishes step changes on: in memory by default, Redis when a URL is
 * given, so that several broker and gateway instances share one stream of changes.
 */
export interface StepChange {
  id: string;
  owner: string;
  phase: string;
  /** Epoch ms of the change, for delivery-latency figures. */
  at: number;
}

export type Topics = { 'step-changed': StepChange };
export type StepPubSub = PubSub<Topics>;
export const STEP_CHANGED = 'step-changed';

export function createPubSub(
  options: {
    redisUrl?: string;
    channelPrefix?: string;
    /** Called when the subscribing connection comes back after a loss: messages may have been missed. */
    onReconnect?: () => void;
  } = {},
): StepPubSub {
  if (!options.redisUrl) return new MemPubSub<Topics>();
  const connect = () => {
    const client = new Redis(options.redisUrl!, { maxRetriesPerRequest: null, lazyConnect: false });
    // ioredis reconnects by itself and queues what is published meanwhile; say so once per outage
    // rather than once per attempt.
    let down = false;
    client.on('error', (error: Error) => {
      if (down) return;
      down = true;
      console.warn(`redis ${options.redisUrl}: ${error.message}; reconnecting`);
    });
    client.on('ready', () => (down = false));
    return client;
  };
  const sub = connect();
  let lost = false;
  sub.on('close', () => (lost = true));
  sub.on('ready', () => {
    if (!lost) return;
    lost = false;
    options.onReconnect?.();
  });
  return new RedisPubSub<Topics>(
    { pub: connect(), sub },
    { channelPrefix: options.channelPrefix ?? 'srcnet' },
  );
}
