import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST_DIR, ensureBuilt } from '../server/build.ts';
import { loadPortalConfig } from '../server/config.ts';
import { startPortal, type RunningPortal } from '../server/server.ts';

let portal: RunningPortal;
beforeAll(async () => {
  await ensureBuilt();
  portal = await startPortal({ ...loadPortalConfig({}), port: 0, gatewayUrl: 'http://gateway.test/graphql' });
}, 60_000);
afterAll(() => portal?.close());

const get = (path: string, init?: RequestInit) => fetch(new URL(path, portal.url), init);

describe('the portal configuration', () => {
  it('has defaults for a local run and names the variable that is wrong', () => {
    expect(loadPortalConfig({})).toEqual({
      port: 4005,
      host: '127.0.0.1',
      gatewayUrl: 'http://127.0.0.1:4000/graphql',
      authMode: 'dev',
    });
    expect(() => loadPortalConfig({ PORTAL_PORT: '70000' })).toThrow(/PORTAL_PORT=70000 must be a number/);
    expect(() => loadPortalConfig({ AUTH_MODE: 'oidc' })).toThrow(/AUTH_MODE=oidc must be one of dev, jwt/);
    expect(() => loadPortalConfig({ PORTAL_GATEWAY_URL: 'gateway' })).toThrow(
      /PORTAL_GATEWAY_URL=gateway must be a URL/,
    );
  });
});

describe('the portal server', () => {
  it('answers its health check and tells the page where the gateway is', async () => {
    expect((await get('/healthz')).status).toBe(200);
    expect(await (await get('/config.json')).json()).toEqual({
      gatewayUrl: 'http://gateway.test/graphql',
      authMode: 'dev',
    });
  });

  it('serves the built page, its hashed assets for good, and the page for its own paths', async () => {
    const page = await get('/');
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    const html = await page.text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await get(script!);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(await (await get('/steps/some-id')).text()).toBe(html);
    expect((await get('/assets/missing.js')).status).toBe(404);
  });

  it('serves nothing outside portal/dist', async () => {
    const outside = readFileSync(join(DIST_DIR, '..', 'package.json'), 'utf8');
    for (const path of ['/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json'])
      expect(await (await get(path)).text()).not.toBe(outside);
  });

  it('reads a pasted 1.0.5 YAML document as a 1.0.7 request', async () => {
    const answer = await get('/api/documents', {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: [
        'name: example',
        'executable:',
        '  type: https://www.purl.org/ivoa.net/EB/schema/types/executable/docker-container-1.0',
        '  image:',
        '    locations: ["ghcr.io/ivoa/oligia-webtop:ubuntu-2022.01.13"]',
        'computer:',
        '  type: https://www.purl.org/ivoa.net/EB/schema/types/computer/simple-compute-resource-1.0',
      ].join('\n'),
    });
    expect(answer.status).toBe(200);
    const { request } = (await answer.json()) as { request: Record<string, { kind: string }> };
    expect(request['executable']!.kind).toMatch(/kinds\/executable\/docker-container\.yaml$/);
    expect(request['compute']!.kind).toMatch(/kinds\/compute\/simple-compute-resource\.yaml$/);
    expect(request).not.toHaveProperty('name');
  });

  it('names where a document cannot be read', async () => {
    const answer = await get('/api/documents', { method: 'POST', body: 'executable:\n  kind: [unclosed' });
    expect(answer.status).toBe(400);
    const { issues } = (await answer.json()) as { issues: { path: string; message: string }[] };
    expect(issues[0]!.message).toMatch(/not valid YAML at line \d+/);
  });
});
