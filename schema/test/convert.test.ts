import { buildSchema, graphql, type GraphQLSchema } from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  brokerApiSdl,
  canonicalizeKinds,
  fromGraphQL,
  offerSetToGraphQL,
  stepToGraphQL,
  upgradeExecutionRequest,
  validateExecutionRequest,
} from '../src/index.ts';
import { example, examples } from './examples.ts';

const schema: GraphQLSchema = buildSchema(brokerApiSdl());

const withoutEmptyLists = (value: unknown): unknown => fromGraphQL(JSON.parse(JSON.stringify(value)));

const STEP_FIELDS = `
  id kind phase expires
  meta { uuid name url created }
  schedule { preparing { start duration } available { start duration } releasing { start duration } }
  executable { __typename kind phase ... on JupyterNotebook { location } ... on DockerContainer { image { locations digest } } }
  compute { __typename kind phase ... on SimpleComputeResource { cores { min max } memory { min max } } }
  storage { __typename kind } data { __typename kind } connectors { location } history { to }`;

describe('IVOA <-> GraphQL', () => {
  const offerSets = examples((name) => /^00[14]-.*offerset-(response|final)\.json$/.test(name));

  it.each(offerSets)('%s round-trips through the GraphQL shape unchanged', (name) => {
    const ivoa = canonicalizeKinds(example(name)) as Record<string, unknown>;
    const graph = offerSetToGraphQL(ivoa as never);
    expect(graph.id).toBe((ivoa.meta as { uuid: string }).uuid);
    const back = fromGraphQL({
      ...graph,
      offers: (graph.offers as object[]).map((offer) => fromGraphQL(offer)),
    });
    expect(back).toEqual(withoutEmptyLists(ivoa));
  });

  it.each(offerSets)(
    '%s in the GraphQL shape is served by the API schema with the right types',
    async (name) => {
      const offerSet = offerSetToGraphQL(canonicalizeKinds(example(name)) as never);
      const result = await graphql({
        schema,
        source: `query($id: ID!) { offerSet(id: $id) { id result offers { ${STEP_FIELDS} } } }`,
        variableValues: { id: offerSet.id },
        rootValue: { offerSet: () => offerSet },
      });
      expect(result.errors).toBeUndefined();
      const offers = (result.data!.offerSet as { offers: Record<string, { __typename: string }>[] }).offers;
      expect(offers.length).toBeGreaterThan(0);
      for (const offer of offers) {
        expect(offer.executable!.__typename).toBe('JupyterNotebook');
        expect(offer.compute!.__typename).toBe('SimpleComputeResource');
      }
    },
  );

  it('a session becomes an ExecutionStep with id, history and offer set', () => {
    const session = canonicalizeKinds(example('001-011-accept-01-response.json')) as never;
    const step = stepToGraphQL(session, { history: [{ to: 'ACCEPTED' }], offerSet: { id: 'x' } });
    expect(step).toMatchObject({
      __typename: 'ExecutionStep',
      id: (session as { meta: { uuid: string } }).meta.uuid,
      phase: 'ACCEPTED',
    });
    expect(step.history).toHaveLength(1);
    expect(fromGraphQL(step)).toEqual(withoutEmptyLists(session));
  });

  it.each(examples((name) => name.includes('offerset-request') && !name.startsWith('006-')))(
    'the 1.0.7 form of %s is accepted unchanged as an ExecutionRequestInput variable',
    async (name) => {
      const upgraded = upgradeExecutionRequest(example(name));
      const validated = validateExecutionRequest(upgraded.document);
      if (!validated.ok) throw new Error(JSON.stringify(validated.issues));
      let received: unknown;
      const result = await graphql({
        schema,
        source: 'mutation($request: ExecutionRequestInput!) { requestOffers(request: $request) { id } }',
        variableValues: { request: JSON.parse(JSON.stringify(validated.value)) },
        rootValue: {
          requestOffers: ({ request }: { request: unknown }) => {
            received = request;
            return { id: 'offerset-1' };
          },
        },
      });
      expect(result.errors).toBeUndefined();
      expect(fromGraphQL(received)).toEqual(validated.value);
    },
  );

  it('a GraphQL input with an unknown field is refused by GraphQL, naming it', async () => {
    const result = await graphql({
      schema,
      source: 'mutation($request: ExecutionRequestInput!) { requestOffers(request: $request) { id } }',
      variableValues: { request: { executable: { kind: 'k', colour: 'blue' } } },
      rootValue: { requestOffers: () => ({ id: 'x' }) },
    });
    expect(result.errors?.[0]?.message).toContain('colour');
  });
});
