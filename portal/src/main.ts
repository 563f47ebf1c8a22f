/**
 * The science-portal page: sign in, ask for offers (form or pasted IVOA document), compare and
 * accept one, and watch every one of the caller's steps change live over graphql-ws through the
 * gateway. The subscription reconnects by itself; while it is down a banner says so, and on
 * reconnection the gateway sends the current state first, so nothing is missed.
 */
import {
  AcceptOfferDocument,
  CancelExecutionStepDocument,
  RequestOffersDocument,
  createExecutionClient,
  type ExecutionClient,
} from '@srcnet/execution-step-client';
import { h } from './dom.ts';
import { LiveStepsDocument, RecentStepsDocument } from './generated/operations.ts';
import { OffersPanel } from './offers.ts';
import { RequestPanel, type Submission } from './request.ts';
import { LISTED_PHASES, StepList } from './steps.ts';
import './style.css';

interface PageConfig {
  gatewayUrl: string;
  authMode: 'dev' | 'jwt';
}

const DEFAULTS: PageConfig = { gatewayUrl: 'http://127.0.0.1:4000/graphql', authMode: 'dev' };
const STORED_IDENTITY = 'srcnet-portal-identity';

async function pageConfig(): Promise<PageConfig> {
  try {
    const response = await fetch('/config.json');
    if (response.ok) return { ...DEFAULTS, ...((await response.json()) as Partial<PageConfig>) };
  } catch {
    // served without the portal server (a static copy): the defaults
  }
  return DEFAULTS;
}

/** A pasted document goes to the portal server, which reads JSON or YAML of any supported version. */
async function readDocument(text: string): Promise<Submission> {
  const response = await fetch('/api/documents', {
    method: 'POST',
    headers: { 'content-type': /^\s*[[{]/.test(text) ? 'application/json' : 'application/yaml' },
    body: text,
  });
  return (await response.json()) as Submission;
}

const config = await pageConfig();
let token = localStorage.getItem(STORED_IDENTITY) ?? '';
let client: ExecutionClient | undefined;
let stopWatching: (() => void) | undefined;
/** Changes once per sign-in, so that the old connection's last words are not shown. */
let generation = 0;

const offline = h(
  'div',
  { id: 'offline', className: 'banner', hidden: true, attrs: { role: 'status' } },
  'Offline: the connection to the gateway is down; reconnecting…',
);
const connection = h('span', { id: 'connection', className: 'connection' }, 'not signed in');
const identityInput =
  config.authMode === 'dev'
    ? h('input', { id: 'user', name: 'user', placeholder: 'user name', autocomplete: 'username' })
    : h('input', { id: 'user', name: 'token', placeholder: 'bearer token (JWT)', type: 'password' });
identityInput.value = config.authMode === 'dev' ? token.replace(/^dev:/, '') : token;
const signIn = h(
  'form',
  { id: 'sign-in', className: 'sign-in' },
  h('label', {}, config.authMode === 'dev' ? 'Signed in as ' : 'Token ', identityInput),
  h('button', { type: 'submit', textContent: 'Sign in' }),
);

const steps = new StepList(async (id) => {
  await client!.request(CancelExecutionStepDocument, { id });
});
const offers = new OffersPanel(async (offer) => {
  const { acceptOffer } = await client!.request(AcceptOfferDocument, { id: offer.id });
  steps.seed({ ...acceptOffer, image: null, dataStaging: [], skahaSession: null });
});
const request = new RequestPanel(readDocument, async (input) => {
  if (!client) throw new Error('sign in first');
  const { requestOffers } = await client.request(RequestOffersDocument, { request: input });
  if (requestOffers.result === 'NO' || !requestOffers.offers.length) {
    offers.hide();
    request.showMessages(
      requestOffers.meta.messages
        .map((message) => message.message ?? '')
        .filter(Boolean)
        .concat('no offer could be made'),
    );
  } else offers.show(requestOffers);
});

function setConnection(state: 'connected' | 'closed' | 'connecting', mine: number) {
  if (mine !== generation) return;
  connection.textContent =
    state === 'connected' ? 'live' : state === 'connecting' ? 'connecting…' : 'offline';
  connection.dataset['state'] = state;
  if (state === 'connected') offline.hidden = true;
  if (state === 'closed') offline.hidden = false;
}

async function start() {
  generation += 1;
  const mine = generation;
  stopWatching?.();
  await client?.dispose();
  steps.clear();
  offers.hide();
  offline.hidden = true;
  if (!token) {
    client = undefined;
    connection.textContent = 'not signed in';
    return;
  }
  client = createExecutionClient({
    url: config.gatewayUrl,
    token,
    onConnectionChange: (state) => setConnection(state, mine),
  });
  setConnection('connecting', mine);
  // The subscription's first events are the active steps; recent ended ones come from a query.
  stopWatching = client.subscribe(
    LiveStepsDocument,
    {},
    {
      next: (data) => mine === generation && steps.update(data.executionStepChanged),
      error: (error) => console.warn('portal: step subscription:', error),
    },
  );
  try {
    const recent = await client.request(RecentStepsDocument, { first: 20, filter: { phase: LISTED_PHASES } });
    if (mine === generation)
      for (const { node } of recent.executionSteps.edges.slice().reverse()) steps.seed(node);
  } catch (error) {
    console.warn('portal: recent steps:', error);
  }
}

signIn.onsubmit = (event) => {
  event.preventDefault();
  const value = identityInput.value.trim();
  token = value && config.authMode === 'dev' ? `dev:${value}` : value;
  if (token) localStorage.setItem(STORED_IDENTITY, token);
  else localStorage.removeItem(STORED_IDENTITY);
  void start();
};

document
  .querySelector('#app')!
  .replaceChildren(
    h('header', { className: 'top' }, h('h1', {}, 'SRCNet execution steps'), signIn, connection),
    offline,
    h('main', {}, h('div', { className: 'left' }, request.element, offers.element), steps.element),
  );
void start();
