import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CONTAINER_PHASES, containerStep, exampleText, phasesOf, testBroker, waitFor } from './harness.ts';

type Broker = Awaited<ReturnType<typeof testBroker>>;
let broker: Broker;
beforeAll(async () => {
  broker = await testBroker();
});
afterAll(() => broker.stop());

const asAlice = { authorization: 'Bearer dev:alice' };

async function call(
  method: string,
  path: string,
  body?: string,
  type?: string,
  accept?: string,
  headers: Record<string, string> = asAlice,
) {
  const response = await fetch(`${broker.url}${path}`, {
    method,
    redirect: 'manual',
    headers: { ...headers, ...(type ? { 'content-type': type } : {}), ...(accept ? { accept } : {}) },
    body,
  });
  const text = await response.text();
  const contentType = response.headers.get('content-type') ?? '';
  return {
    status: response.status,
    location: response.headers.get('location'),
    contentType,
    body: text ? (contentType.includes('json') ? JSON.parse(text) : parse(text)) : undefined,
  };
}

const phaseOf = async (id: string) =>
  (await call('GET', `/sessions/${id}`, undefined, undefined, 'application/json')).body.phase as string;

describe.each([
  {
    flow: '001 (YAML)',
    request: '001-001-offerset-request.yaml',
    reject: '001-006-reject-00-request.yaml',
    accept: '001-010-accept-01-request.json',
    type: 'application/yaml',
  },
  {
    flow: '004 (JSON)',
    request: '004-001-offerset-request.json',
    reject: '004-004-reject-00-request.json',
    accept: '004-007-accept-01-request.json',
    type: 'application/json',
  },
])('the reference flow $flow', ({ request, reject, accept, type }) => {
  it('offers, rejects offer 0, accepts offer 1, rejects the rest, and moves the accepted one on', async () => {
    const made = await call('POST', '/requests', exampleText(request), type);
    expect(made.status).toBe(303);
    expect(made.contentType).toContain(type === 'application/yaml' ? 'yaml' : 'json');
    expect(made.location).toBe(`${broker.url}/offersets/${made.body.meta.uuid}`);
    expect(made.body.result).toBe('YES');
    expect(made.body.offers).toHaveLength(4);
    const [offer0, offer1] = made.body.offers.map((offer: { meta: { uuid: string } }) => offer.meta.uuid);
    expect(made.body.offers[0].meta.options).toEqual([
      { kind: 'uri:enum-value-option', path: 'phase', values: ['ACCEPTED', 'REJECTED', 'CANCELLED'] },
    ]);
    expect(made.body.offers[0].compute.cores).toEqual({ min: 10, max: 10 });

    const got = await call('GET', made.location!.replace(broker.url, ''));
    expect(got.status).toBe(200);
    expect(got.contentType).toContain('yaml');
    expect(got.body.offers.map((o: { phase: string }) => o.phase)).toEqual([
      'OFFERED',
      'OFFERED',
      'OFFERED',
      'OFFERED',
    ]);

    const rejected = await call(
      'POST',
      `/sessions/${offer0}`,
      exampleText(reject),
      reject.endsWith('json') ? 'application/json' : 'application/yaml',
    );
    expect(rejected.status).toBe(200);
    expect(rejected.body.phase).toBe('REJECTED');
    expect(rejected.body.meta.options).toBeUndefined();

    const accepted = await call('POST', `/sessions/${offer1}`, exampleText(accept), 'application/json');
    expect(accepted.status).toBe(200);
    // Offer 1's window starts two hours on: it waits, with a durable timer, until preparation is due.
    expect(accepted.body.phase).toBe('WAITING');
    expect(accepted.body.schedule.preparing.start).toBe(made.body.offers[1].schedule.preparing.start);
    expect(accepted.body.meta.options[0].values).toEqual(['CANCELLED']);

    const final = await call(
      'GET',
      `/offersets/${made.body.meta.uuid}`,
      undefined,
      undefined,
      'application/json',
    );
    const phases = final.body.offers.map((o: { phase: string }) => o.phase);
    expect(phases[0]).toBe('REJECTED');
    expect(phases.slice(2)).toEqual(['REJECTED', 'REJECTED']);
    expect(phases[1]).toBe('WAITING');

    const again = await call(
      'POST',
      `/sessions/${offer0}`,
      exampleText(accept),
      'application/json',
      'application/json',
    );
    expect(again.status).toBe(409);
    expect(again.body.messages[0].message).toContain('it is REJECTED');
  });
});

describe('errors', () => {
  it("404 for unknown ids, and for another user's step", async () => {
    expect((await call('GET', '/sessions/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await call('GET', '/offersets/not-a-uuid')).status).toBe(404);
    const made = await call(
      'POST',
      '/requests',
      exampleText('003-001-offerset-request.json'),
      'application/json',
    );
    const id = made.body.offers[0].meta.uuid;
    expect(
      (
        await call('GET', `/sessions/${id}`, undefined, undefined, undefined, {
          authorization: 'Bearer dev:bob',
        })
      ).status,
    ).toBe(404);
  });

  it('400 naming the path and the rule for a malformed document', async () => {
    const bad = await call(
      'POST',
      '/requests',
      JSON.stringify({
        executable: { kind: 'https://example.org/x' },
        schedule: { requested: { duration: 'soon' } },
      }),
      'application/json',
    );
    expect(bad.status).toBe(400);
    const texts = bad.body.messages.map((m: { message: string }) => m.message);
    expect(texts).toContain('/executable/kind: unknown kind "https://example.org/x"');
    expect(texts).toContain('/schedule/requested/duration: must be an ISO-8601 duration such as PT1H');
    const syntax = await call(
      'POST',
      '/requests',
      'executable: [unclosed',
      'application/yaml',
      'application/json',
    );
    expect(syntax.status).toBe(400);
    expect(syntax.body.messages[0].message).toContain('not valid YAML');
    const refused = await call(
      'POST',
      '/requests',
      exampleText('006-001-offerset-request.yaml'),
      'application/yaml',
      'application/json',
    );
    expect(refused.status).toBe(400);
    expect(refused.body.messages[0].message).toContain('/volumes/0/kind');
  });

  it('400 for an update the broker does not support, naming why', async () => {
    const made = await call(
      'POST',
      '/requests',
      exampleText('003-001-offerset-request.json'),
      'application/json',
    );
    const id = made.body.offers[0].meta.uuid;
    const wrong = await call(
      'POST',
      `/sessions/${id}`,
      JSON.stringify({ kind: 'uri:enum-value-update', path: 'phase', value: 'RUNNING' }),
      'application/json',
    );
    expect(wrong.status).toBe(400);
    expect(wrong.body.messages[0].message).toContain('must be one of ACCEPTED, REJECTED, CANCELLED');
  });

  it('a request with no type is read and answered as YAML', async () => {
    const made = await call('POST', '/requests', exampleText('002-001-offerset-request.yaml'));
    expect(made.status).toBe(303);
    expect(made.contentType).toContain('yaml');
  });
});

describe('the lifecycle', () => {
  it('a direct container step runs to COMPLETED, with every phase in its history', async () => {
    const request = containerStep('PT10M');
    const made = await call('POST', '/direct', JSON.stringify(request), 'application/json');
    expect(made.status).toBe(303);
    expect(made.location).toBe(`${broker.url}/sessions/${made.body.meta.uuid}`);
    await waitFor('COMPLETED', async () =>
      (await phaseOf(made.body.meta.uuid)) === 'COMPLETED' ? true : undefined,
    );
    const history = await broker.broker.history([made.body.meta.uuid]);
    expect(phasesOf(history.get(made.body.meta.uuid)!)).toEqual(CONTAINER_PHASES);
  });

  it('a direct request that cannot be met answers 400 with a FAILED step carrying the reasons', async () => {
    const made = await call(
      'POST',
      '/direct',
      JSON.stringify({
        executable: {
          kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/jupyter-notebook.yaml',
          location: 'x',
        },
        compute: {
          kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml',
          cores: { min: 64 },
        },
      }),
      'application/json',
      'application/json',
    );
    expect(made.status).toBe(400);
    expect(made.body.phase).toBe('FAILED');
    expect(made.body.meta.messages.map((m: { message: string }) => m.message).join(' ')).toContain(
      'at least 64 cores',
    );
  });

  it('cancel releases every component that holds something', async () => {
    const before = broker.simulation.stats().received;
    const made = await call(
      'POST',
      '/direct',
      exampleText('003-001-offerset-request.json'),
      'application/json',
    );
    const id = made.body.meta.uuid;
    await waitFor('AVAILABLE', async () => ((await phaseOf(id)) === 'AVAILABLE' ? true : undefined));
    const cancelled = await call(
      'POST',
      `/sessions/${id}`,
      JSON.stringify({ kind: 'uri:enum-value-update', path: '/phase', value: 'CANCELLED' }),
      'application/json',
    );
    expect(cancelled.body.phase).toBe('CANCELLED');
    const step = await waitFor('components cancelled', async () => {
      const doc = (await call('GET', `/sessions/${id}`, undefined, undefined, 'application/json')).body;
      return doc.executable.phase === 'CANCELLED' && doc.compute.phase === 'CANCELLED' ? doc : undefined;
    });
    expect(step.phase).toBe('CANCELLED');
    // prepare x2 and cancel x2 (executable and compute)
    expect(broker.simulation.stats().received - before).toBe(4);
  });
});

describe('offer expiry', () => {
  it('an offer lapses into EXPIRED, and accepting it then says why', async () => {
    const short = await testBroker({ OFFER_TTL_SECONDS: '1' });
    try {
      const made = await fetch(`${short.url}/requests`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: exampleText('003-001-offerset-request.json'),
      });
      const offerSet = await made.json();
      const id = offerSet.offers[0].meta.uuid;
      const phase = async () =>
        (
          await (
            await fetch(`${short.url}/sessions/${id}`, { headers: { accept: 'application/json' } })
          ).json()
        ).phase;
      await waitFor('EXPIRED', async () => ((await phase()) === 'EXPIRED' ? true : undefined), 5000);
      const accept = await fetch(`${short.url}/sessions/${id}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ kind: 'uri:enum-value-update', path: 'phase', value: 'ACCEPTED' }),
      });
      expect(accept.status).toBe(409);
      expect((await accept.json()).messages[0].message).toContain('it is EXPIRED');
    } finally {
      await short.stop();
    }
  });
});
