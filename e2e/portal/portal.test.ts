/**
 * The science portal in a real browser (Debian's Chromium) on the whole stack: a user signs in,
 * asks for offers for a container with a 1.2 GB image (copied into the emulated Harbor, so the copy
 * takes a few seconds), accepts the first, and watches the step's phase change, its expected ready
 * time and its progress bars move on screen without reloading. A screenshot of the step with its bars is saved under
 * e2e/portal/artifacts/. Bad input shows the server's field-named message next to the field.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2EStack, type E2EStack } from '../support/stack.ts';

const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present) {
  if (process.env.CI === 'true')
    throw new Error(`${CHROMIUM} is missing, and CI=true requires it (.ci/run installs it)`);
  console.warn(`SKIPPED: the portal browser test needs ${CHROMIUM} (apt-get install chromium)`);
}

const ARTIFACTS = resolve(import.meta.dirname, 'artifacts');
const EXAMPLE_009 = resolve(
  import.meta.dirname,
  '../../../shared/reference/calycopis-examples/example-009-001-offerset-request.yaml',
);
const IMAGE = 'ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13';
const DIGEST = 'sha256:5d22a47f43b2b5efc433554092de724bd6c3cf01d2c74038f6569770a5dd5245';

/** What the page showed of one step, each value as it changed. */
interface Seen {
  phases: string[];
  image: string[];
  staging: string[];
  /** The step's expected ready time in words ("ready in about 4 minutes, 9 at most"). */
  ready: string[];
}

let stack: E2EStack;
let browser: Browser;
let failed = false;
beforeAll(async () => {
  if (!present) return;
  stack = await startE2EStack({ name: 'portal' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, 240_000);
afterAll(async () => {
  await browser?.close();
  await stack?.stop(failed);
});

async function track<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    failed = true;
    throw error;
  }
}

async function openSignedIn(user: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 950 } });
  page.on('pageerror', (error) => console.error(`portal page error: ${error.message}`));
  await page.goto(`http://127.0.0.1:${stack.ports.portal}/`);
  await page.fill('#user', user);
  await page.click('#sign-in button');
  await page.locator('#connection[data-state="connected"]').waitFor({ timeout: 20_000 });
  return page;
}

describe.skipIf(!present)('the science portal', () => {
  it(
    'asks for offers, accepts the first, and shows the phase change and a progress bar move live',
    () =>
      track(async () => {
        const page = await openSignedIn('petra');
        await page.selectOption('#executable-kind', 'container');
        await page.fill('#executable-location', IMAGE);
        await page.fill('#executable-digest', DIGEST);
        await page.fill('#cores', '2');
        await page.fill('#memory', '4');
        await page.fill('#duration', '10');
        await page.fill('#data-dids', 'testing:zrq-test-20250509-082506');
        await page.click('#request-offers');

        const offers = page.locator('#offers tbody tr[data-offer-id]');
        await offers.first().waitFor({ timeout: 20_000 });
        expect(await offers.count()).toBeGreaterThan(1);
        const id = (await offers.first().getAttribute('data-offer-id'))!;

        // What the screen shows, sampled in the page every 50 ms from before the accept; a marker
        // on window proves the page is never reloaded.
        await page.evaluate((stepId) => {
          const seen: Seen = { phases: [], image: [], staging: [], ready: [] };
          Object.assign(window, { seen, notReloaded: true });
          const last = (list: string[]) => list[list.length - 1];
          setInterval(() => {
            const card = document.querySelector(`[data-step-id="${stepId}"]`);
            if (!card) return;
            const phase = card.querySelector('.phase')?.textContent ?? '';
            if (phase !== last(seen.phases)) seen.phases.push(phase);
            const ready = card.querySelector('.schedule .ready-in')?.textContent;
            if (ready && ready !== last(seen.ready)) seen.ready.push(ready);
            for (const kind of ['image', 'staging'] as const) {
              const value = card.querySelector(`progress[data-progress="${kind}"]`)?.getAttribute('value');
              if (value && value !== last(seen[kind])) seen[kind].push(value);
            }
          }, 50);
        }, id);
        await offers.first().locator('button.accept').click();

        const card = page.locator(`[data-step-id="${id}"]`);
        await card.waitFor({ timeout: 10_000 });
        // The image copy in progress: the moment the screenshot is for.
        await card.locator('.progress.state-copying').waitFor({ timeout: 60_000 });
        // The card is redrawn every 500 ms while it ticks: keyboard focus stays where it was put.
        await card.locator('button.cancel').focus();
        await page.waitForTimeout(1200);
        expect(
          await page.evaluate(
            (stepId) => document.activeElement?.matches(`[data-step-id="${stepId}"] button.cancel`) ?? false,
            id,
          ),
        ).toBe(true);
        mkdirSync(ARTIFACTS, { recursive: true });
        const screenshot = join(ARTIFACTS, 'portal-step-progress.png');
        await page.screenshot({ path: screenshot, fullPage: true });
        expect(readFileSync(screenshot).length).toBeGreaterThan(10_000);

        await card
          .locator(
            '.phase[data-phase="AVAILABLE"], .phase[data-phase="RUNNING"], .phase[data-phase="RELEASING"], .phase[data-phase="COMPLETED"]',
          )
          .waitFor({ timeout: 90_000 });
        const seen = await page.evaluate(() => (window as unknown as { seen: Seen }).seen);
        expect(seen.phases).toContain('PREPARING');
        expect(seen.phases.indexOf('PREPARING')).toBeLessThan(
          Math.max(
            ...['AVAILABLE', 'RUNNING', 'RELEASING', 'COMPLETED'].map((phase) => seen.phases.indexOf(phase)),
          ),
        );
        expect(new Set(seen.image).size).toBeGreaterThan(1);
        expect(seen.image.at(-1)).toBe('1.000');
        // While preparing, the card said when the step would be ready, from the broker's estimates.
        expect(seen.ready[0]).toMatch(
          /^(ready in about \d+ (second|minute|hour)s?(, \d+( (second|minute|hour)s?)? at most)?|should be ready (now|by now))/,
        );
        expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(
          true,
        );
        // The timeline lists the transitions the step went through.
        await expect
          .poll(() => card.locator('.timeline li').allInnerTexts(), { timeout: 10_000 })
          .toEqual(
            expect.arrayContaining([
              expect.stringContaining('→ PREPARING'),
              expect.stringContaining('PREPARING → AVAILABLE'),
            ]),
          );
        await page.close();
      }),
    180_000,
  );

  it(
    'shows the server validation message next to the field it names',
    () =>
      track(async () => {
        const page = await openSignedIn('quentin');
        await page.fill('#cores', '-2');
        await page.click('#request-offers');
        const cores = page.locator('[data-field="/compute/cores"] .field-error');
        await expect.poll(() => cores.innerText(), { timeout: 20_000 }).toContain('/compute/cores/min');
        expect(await cores.innerText()).toContain('must be >= 0');
        expect(await page.locator('[data-field="/compute/memory"] .field-error').innerText()).toBe('');

        // A pasted document: the messages go next to the document, naming the path inside it.
        await page.click('#mode-document');
        await page.fill(
          '#document',
          JSON.stringify({
            executable: {
              kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/executable/docker-container.yaml',
              image: { locations: [IMAGE] },
            },
            compute: {
              kind: 'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/compute/simple-compute-resource.yaml',
              memory: { min: -1 },
            },
          }),
        );
        await page.click('#request-offers');
        const document = page.locator('[data-field="/"] .field-error');
        await expect.poll(() => document.innerText(), { timeout: 20_000 }).toContain('/compute/memory/min');
        await page.close();
      }),
    60_000,
  );

  it(
    'takes the reference example 009 pasted as YAML (schema 1.0.5) and offers for it',
    () =>
      track(async () => {
        const page = await openSignedIn('rosa');
        await page.click('#mode-document');
        await page.fill('#document', readFileSync(EXAMPLE_009, 'utf8'));
        await page.click('#request-offers');
        await page.locator('#offers tbody tr').first().waitFor({ timeout: 20_000 });
        expect(await page.locator('[data-field="/"] .field-error').innerText()).toBe('');
        await page.close();
      }),
    60_000,
  );

  it(
    'says it is offline when the gateway goes away',
    () =>
      track(async () => {
        const page = await openSignedIn('sven');
        expect(await page.locator('#offline').isHidden()).toBe(true);
        await stack.launched.kill('gateway');
        await page.locator('#offline').waitFor({ state: 'visible', timeout: 20_000 });
        expect(await page.locator('#connection').innerText()).not.toBe('live');
        await page.close();
      }),
    60_000,
  );
});
