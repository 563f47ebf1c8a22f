/**
 * Scale-out: two brokers on one PostgreSQL database and two gateways, all sharing Redis pub/sub.
 * Steps are made through both gateways (so committed by both brokers); a subscriber on each
 * gateway sees every step's every phase, in order, each event once.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceAvailable, TEST_DATABASE_URL, TEST_REDIS_URL } from '@srcnet/service-kit/testing';
import { brokerEnv, gatewayEnv } from '../../gateway/src/stack/services.ts';
import { freePorts, startE2EStack, subscribe, type E2EStack, STACK_START_MS } from '../support/stack.ts';

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';
const REQUEST = {
  executable: {
    kind: `${KIND}executable/docker-container.yaml`,
    image: {
      locations: ['ghcr.io/zarquan/heliophorus-cantliei:sha-831ee57'],
      digest: 'sha256:6e495692cc6f1cae2023f261f433d4691aa70b19416730f8301e45fbb74bc526',
    },
  },
  compute: { kind: `${KIND}compute/simple-compute-resource.yaml`, cores: { min: 1, max: 1 } },
  schedule: { requested: { duration: 'PT10M' } },
};
const PHASES = ['ACCEPTED', 'PREPARING', 'AVAILABLE', 'RUNNING', 'RELEASING', 'COMPLETED'];
const STEPS_PER_GATEWAY = 3;
const CHANGED = /* GraphQL */ `
  subscription {
    executionStepChanged {
      id
      phase
      meta {
        modified
      }
      history {
        to
      }
      skahaSession {
        status
      }
    }
  }
`;

const ready = (await serviceAvailable('PostgreSQL')) && (await serviceAvailable('Redis'));
const database = `e2e_scale_out_${randomUUID().replace(/-/g, '')}`;
const databaseUrl = Object.assign(new URL(TEST_DATABASE_URL), { pathname: `/${database}` }).toString();

async function admin(sql: string) {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

let stack: E2EStack;
let second: { broker: number; gateway: number };
let failed = false;

beforeAll(async () => {
  if (!ready) return;
  await admin(`create database ${database}`);
  const extra = await freePorts();
  second = { broker: extra.broker, gateway: extra.gateway };
  stack = await startE2EStack({
    name: 'scale-out',
    customise: (specs, ports, dir) => {
      const shared = { DATABASE_URL: databaseUrl, REDIS_URL: TEST_REDIS_URL };
      const broker = specs.find((spec) => spec.name === 'broker')!;
      const gateway = specs.find((spec) => spec.name === 'gateway')!;
      const brokerB = {
        ...broker,
        name: 'broker-b',
        port: second.broker,
        stage: broker.stage + 1,
        env: { ...brokerEnv(ports, dir, second.broker), ...shared },
      };
      const gatewayB = {
        ...gateway,
        name: 'gateway-b',
        port: second.gateway,
        stage: gateway.stage + 1,
        env: {
          ...gatewayEnv({ ...ports, broker: second.broker }, second.gateway),
          REDIS_URL: TEST_REDIS_URL,
        },
      };
      return [
        ...specs.map((spec) =>
          spec === broker
            ? { ...spec, env: { ...spec.env, ...shared } }
            : spec === gateway
              ? { ...spec, stage: spec.stage + 1, env: { ...spec.env, REDIS_URL: TEST_REDIS_URL } }
              : spec,
        ),
        brokerB,
        gatewayB,
      ];
    },
  });
}, STACK_START_MS);

afterAll(async () => {
  if (!ready) return;
  await stack?.stop(failed);
  await admin(`drop database if exists ${database} with (force)`);
});

describe.skipIf(!ready)('two gateways and two brokers on Redis and PostgreSQL', () => {
  it('deliver every phase of every step to a subscriber on each gateway, each event once', async () => {
    try {
      const gateways = [stack.gatewayUrl(), stack.gatewayUrl(second.gateway)];
      const subscribers = gateways.map((url) => subscribe(stack.ws('dev:carol', url), CHANGED));
      await new Promise((done) => setTimeout(done, 500));

      const ids: string[] = [];
      for (const url of gateways) {
        for (let n = 0; n < STEPS_PER_GATEWAY; n++) {
          const offers = await stack.graphql(
            'mutation O($request: ExecutionRequestInput!) { requestOffers(request: $request) { offers { id } } }',
            { request: REQUEST },
            'dev:carol',
            url,
          );
          expect(offers.body.errors).toBeUndefined();
          const id = offers.body.data.requestOffers.offers[0].id as string;
          const accepted = await stack.graphql(
            'mutation A($id: ID!) { acceptOffer(id: $id) { id } }',
            { id },
            'dev:carol',
            url,
          );
          expect(accepted.body.errors).toBeUndefined();
          ids.push(id);
        }
      }

      const finished = (events: { data?: any }[]) =>
        ids.every((id) =>
          events.some(
            (event) =>
              event.data?.executionStepChanged.id === id &&
              ['COMPLETED', 'FAILED'].includes(event.data.executionStepChanged.phase),
          ),
        );
      for (const subscriber of subscribers) await subscriber.until(finished, 'every step finished', 120_000);

      for (const [index, subscriber] of subscribers.entries()) {
        for (const id of ids) {
          const events = subscriber.events
            .map((event) => event.data?.executionStepChanged)
            .filter((step) => step?.id === id);
          const phases = events
            .map((step) => step.phase as string)
            .filter((phase, i, all) => phase !== 'WAITING' && phase !== all[i - 1]);
          expect(phases.slice(phases.indexOf('ACCEPTED')), `gateway ${index}, step ${id}`).toEqual(PHASES);
          // A duplicate delivery would repeat an event exactly (a change of a field from another
          // subgraph, such as the session's status, is a new event even when the phase stays).
          const seen = events.map((step) => JSON.stringify(step));
          expect(new Set(seen).size, `gateway ${index}, step ${id}: ${seen.join(' ')}`).toBe(seen.length);
          expect(events.filter((step) => step.phase === 'COMPLETED')).toHaveLength(1);
        }
      }
    } catch (error) {
      failed = true;
      throw error;
    }
  }, 180_000);
});
