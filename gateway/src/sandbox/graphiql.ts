import { print } from 'graphql';
import {
  AcceptOfferDocument,
  ExecutionStepChangedDocument,
  ExecutionStepsDocument,
  RequestOffersDocument,
} from '@srcnet/execution-step-client';

const KINDS = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds';

/** The reference's first example (a one-hour notebook), as an IVOA 1.0.7 request. */
const EXAMPLE_REQUEST = {
  executable: {
    kind: `${KINDS}/executable/jupyter-notebook.yaml`,
    meta: { name: 'my-notebook' },
    location: 'https://raw.githubusercontent.com/Zarquan/binder-demo/main/02_dmhh.ipynb',
  },
  schedule: { requested: { duration: 'PT1H' } },
  compute: {
    kind: `${KINDS}/compute/simple-compute-resource.yaml`,
    cores: { min: 2, max: 4 },
    memory: { min: 2, max: 8 },
  },
};

const json = (value: unknown) => JSON.stringify(value, null, 2);

/**
 * GraphiQL as the sandbox: the client library's own operations as tabs, in the order a portal
 * uses them (watch your steps, ask for offers, accept one, list).
 */
export function graphiqlOptions(devMode: boolean) {
  const headers = devMode
    ? json({ Authorization: 'Bearer dev:alice' })
    : json({ Authorization: 'Bearer <JWT>' });
  const tab = (document: Parameters<typeof print>[0], variables: unknown) => ({
    query: print(document),
    variables: json(variables),
  });
  return {
    title: 'SRCNet execution gateway',
    // Over SSE a subscription carries the headers of the editor's Headers tab, as queries do;
    // GraphiQL's graphql-ws client would connect without them, as the anonymous dev user.
    subscriptionsProtocol: 'SSE' as const,
    // The Headers editor starts with these; GraphiQL ignores headers given per tab.
    headers,
    defaultEditorToolsVisibility: true,
    defaultTabs: [
      tab(ExecutionStepChangedDocument, {}),
      tab(RequestOffersDocument, { request: EXAMPLE_REQUEST }),
      tab(AcceptOfferDocument, { id: '<an id from requestOffers.offers>' }),
      tab(ExecutionStepsDocument, { first: 10 }),
    ],
  };
}
