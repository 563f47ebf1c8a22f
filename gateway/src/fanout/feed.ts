import { createClient } from 'graphql-sse';
import {
  createPubSub,
  signIdentity,
  STEP_CHANGED,
  type Identity,
  type StepPubSub,
} from '@srcnet/service-kit';

/**
 * Where the gateway learns that a step changed: one stream per gateway instance, whatever the
 * number of subscribers. A notice carries only the step's id; the fan-out reads the rest.
 */
export interface ChangeFeed {
  /** `onGap`: the feed was interrupted and may have missed notices (see catch-up.ts). */
  start(onChange: (stepId: string) => void, onGap: () => void): Promise<void>;
  close(): Promise<void>;
}

/** The identity the gateway uses for its own reads of the change stream: it must see every step. */
export const GATEWAY_IDENTITY: Identity = { user: 'gateway', roles: ['admin'] };

/**
 * The Redis topic the brokers publish on when several instances run. A notice published while
 * this gateway's connection was down is gone; reconnecting is reported as a gap.
 */
export function redisFeed(redisUrl: string): ChangeFeed {
  let pubsub: StepPubSub | undefined;
  let unsubscribe: (() => unknown) | undefined;
  return {
    async start(onChange, onGap) {
      pubsub = createPubSub({ redisUrl, onReconnect: onGap });
      unsubscribe = await pubsub.subscribe(STEP_CHANGED, (change) => onChange(change.id));
    },
    async close() {
      await unsubscribe?.();
      await pubsub?.dispose();
    },
  };
}

/**
 * The broker's own `executionStepChanged` over SSE, read as the gateway (an admin, so every step's
 * changes arrive), reconnecting with back-off when the broker goes away. On (re)connect the broker
 * first replays the current state of active steps; the fan-out recognises those as no change.
 */
export function brokerFeed(options: {
  url: string;
  gatewaySecret: string;
  onStatus?: (connected: boolean, error?: unknown) => void;
}): ChangeFeed {
  const client = createClient({
    url: options.url,
    headers: () => signIdentity(options.gatewaySecret, GATEWAY_IDENTITY),
    retryAttempts: 0,
  });
  let closed = false;
  let running: Promise<void> | undefined;
  let stop: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((done) => {
      const timer = setTimeout(done, ms);
      stop = () => {
        clearTimeout(timer);
        done();
      };
    });

  async function follow(onChange: (stepId: string) => void, onGap: () => void) {
    let delay = 250;
    let interrupted = false;
    while (!closed) {
      const events = client.iterate<{ executionStepChanged: { id: string } }>({
        query: 'subscription GatewayChangeFeed { executionStepChanged { id } }',
      });
      stop = () => void events.return?.();
      try {
        for await (const result of events) {
          if (result.errors?.length) throw new Error(result.errors.map((error) => error.message).join('; '));
          options.onStatus?.(true);
          delay = 250;
          if (interrupted) {
            interrupted = false;
            onGap();
          }
          if (result.data) onChange(result.data.executionStepChanged.id);
        }
        if (!closed) options.onStatus?.(false, new Error('the broker ended the change stream'));
      } catch (error) {
        options.onStatus?.(false, error);
      }
      interrupted = true;
      if (!closed) await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }

  return {
    async start(onChange, onGap) {
      running = follow(onChange, onGap);
    },
    async close() {
      closed = true;
      stop?.();
      client.dispose();
      await running;
    },
  };
}
