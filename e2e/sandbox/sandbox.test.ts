/**
 * The GraphiQL sandbox in a real browser (Debian's Chromium): a GET of /graphql opens it with the
 * example operations as tabs, and the subscription tab, run as it stands, shows a step that is
 * made afterwards: subscriptions work in the sandbox (over SSE, with the Headers tab's identity).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2EStack, type E2EStack, STACK_START_MS } from '../support/stack.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present) {
  if (process.env.CI === 'true')
    throw new Error(`${CHROMIUM} is missing, and CI=true requires it (.ci/run installs it)`);
  console.warn(`SKIPPED: the sandbox browser test needs ${CHROMIUM} (apt-get install chromium)`);
}

let stack: E2EStack;
let browser: Browser;
beforeAll(async () => {
  if (!present) return;
  stack = await startE2EStack({ name: 'sandbox' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, STACK_START_MS);
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

const KIND = 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/';

describe.skipIf(!present)('the GraphiQL sandbox', () => {
  it('opens on a browser GET with the example operations, and its subscription shows a new step live', async () => {
    const page = await browser.newPage();
    await page.goto(stack.gatewayUrl());
    const tabs = page.locator('.graphiql-tab-button');
    await tabs.first().waitFor({ timeout: 20_000 });
    expect(await tabs.allInnerTexts()).toEqual([
      'ExecutionStepChanged',
      'RequestOffers',
      'AcceptOffer',
      'ExecutionSteps',
    ]);

    await page.locator('.graphiql-execute-button').click();
    // The subscription's first answer is the caller's (alice's, from the tab's headers) current
    // steps: none. Then a step she makes appears in the response pane.
    await page.waitForTimeout(1000);
    const made = await stack.graphql(
      'mutation Run($request: ExecutionRequestInput!) { executeDirect(request: $request) { id } }',
      {
        request: {
          executable: {
            kind: `${KIND}executable/jupyter-notebook.yaml`,
            location: 'https://example.org/n.ipynb',
          },
          schedule: { requested: { duration: 'PT10M' } },
        },
      },
      'dev:alice',
    );
    const id = made.body.data.executeDirect.id as string;
    const response = page.locator('.graphiql-response');
    await expect.poll(() => response.innerText(), { timeout: 20_000 }).toContain(id);
    expect(await response.innerText()).toContain('"phase"');
    await page.close();
  }, 60_000);
});
