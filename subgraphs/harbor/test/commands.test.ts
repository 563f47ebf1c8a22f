/**
 * The worker on its own, driven by signed commands as the broker sends them, with a callback
 * receiver in place of the broker: redelivery, cancel during a copy, proxy-cache copies, and
 * the batched watcher used when webhooks are off.
 */
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { DEV_SECRET, signedHeaders } from '@srcnet/service-kit';
import { startHarborEmulator, type HarborEmulator } from '../emulator/index.ts';
import { loadConfig } from '../src/config.ts';
import { startHarborWorker, type RunningHarborWorker } from '../src/worker.ts';
import { DOCKER_KIND, waitFor } from './stack.ts';

const SECRET = DEV_SECRET;
const MB = 1024 * 1024;
const SESSION_KIND =
  'https://www.purl.org/ivoa.net/Calycopis-openapi/schema/v1.0/kinds/session/scheduled-execution-session.yaml';

let source: HarborEmulator;
let sourceHost: string;
let webtop: string;
let receiver: Server;
let callbackUrl: string;
const callbacks: Ivoa.ComponentCallback[] = [];
const dirs: string[] = [];
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  source = await startHarborEmulator({ projects: [{ name: 'ivoa', public: true }] });
  sourceHost = new URL(source.url).host;
  webtop = source.addLocalImage({ image: 'ivoa/webtop:1.0', size: 400 * MB, layers: 4 }).digest;
  receiver = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      callbacks.push(JSON.parse(body) as Ivoa.ComponentCallback);
      response.writeHead(202, { 'content-type': 'application/json' }).end('{"outcome":"applied"}');
    });
  });
  await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
  const address = receiver.address() as { port: number };
  callbackUrl = `http://127.0.0.1:${address.port}/callbacks`;
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});
afterAll(async () => {
  await source.close();
  await new Promise((done) => receiver.close(done));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function setup(
  env: Record<string, string> = {},
  harborOptions: Parameters<typeof startHarborEmulator>[0] = {},
): Promise<{ harbor: HarborEmulator; worker: RunningHarborWorker }> {
  const dir = mkdtempSync(join(tmpdir(), 'harbor-commands-'));
  dirs.push(dir);
  const harbor = await startHarborEmulator({
    timing: { timeScale: 0.1, jitter: 0 },
    projects: [{ name: 'skaha' }],
    ...harborOptions,
  });
  const worker = await startHarborWorker(
    loadConfig({
      PORT: '0',
      HARBOR_SQLITE_PATH: join(dir, 'harbor.sqlite'),
      HARBOR_URL: harbor.url,
      HARBOR_UPSTREAM_URLS: `${sourceHost}=${source.url}`,
      ...env,
    }),
    { logger: pino({ level: 'silent' }) },
  );
  await worker.ready;
  cleanups.push(async () => {
    await worker.close();
    await harbor.close();
  });
  return { harbor, worker };
}

function command(
  action: Ivoa.WorkerAction,
  stepId: string,
  uuid: string,
  digest = webtop,
): Ivoa.WorkerCommand {
  return {
    commandId: `${stepId}:${uuid}:${action}`,
    action,
    stepId,
    owner: 'alice',
    component: { role: 'executable', uuid, kind: DOCKER_KIND },
    step: {
      kind: SESSION_KIND,
      meta: { uuid: stepId },
      phase: 'PREPARING',
      executable: {
        kind: DOCKER_KIND,
        meta: { uuid },
        image: { locations: [`${sourceHost}/ivoa/webtop:1.0`], digest },
      },
    } as unknown as Ivoa.ScheduledExecutionSession,
    callbackUrl,
  };
}

async function send(worker: RunningHarborWorker, cmd: Ivoa.WorkerCommand) {
  const body = JSON.stringify(cmd);
  const response = await fetch(`${worker.url}/commands`, {
    method: 'POST',
    headers: signedHeaders(SECRET, body, cmd.commandId),
    body,
  });
  return { status: response.status, body: await response.json() };
}

const phasesOf = (uuid: string) => callbacks.filter((c) => c.componentUuid === uuid).map((c) => c.phase);
const until = (uuid: string, phase: Ivoa.LifecyclePhase) =>
  waitFor(`${phase} for ${uuid}`, async () => (phasesOf(uuid).includes(phase) ? true : undefined));

describe('commands', () => {
  it('a redelivered prepare takes effect once; an unsigned one is refused', async () => {
    const { harbor, worker } = await setup();
    const [stepId, uuid] = [randomUUID(), randomUUID()];
    const cmd = command('prepare', stepId, uuid);
    expect((await send(worker, cmd)).status).toBe(202);
    expect((await send(worker, cmd)).body.repeated).toBe(true);
    const unsigned = await fetch(`${worker.url}/commands`, { method: 'POST', body: JSON.stringify(cmd) });
    expect(unsigned.status).toBe(401);
    await until(uuid, 'AVAILABLE');
    await worker.worker.idle();
    expect(harbor.stats().requests.byRoute['POST /api/v2.0/replication/executions']).toBe(1);
    expect(phasesOf(uuid)).toEqual(['PREPARING', 'AVAILABLE']);
    const available = callbacks.find((c) => c.componentUuid === uuid && c.phase === 'AVAILABLE')!;
    expect(available.observation).toMatchObject({
      action: 'image-copy',
      outcome: 'ok',
      params: { registry: sourceHost, local: false },
    });
    expect((available.observation!.params as unknown as { bytes: number }).bytes).toBeGreaterThan(
      400_000_000,
    );
    const sequences = callbacks.filter((c) => c.componentUuid === uuid).map((c) => c.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
  });

  it('cancel during a copy stops the replication execution and reports CANCELLED', async () => {
    // A slow Harbor: the copy takes about 10 s, so the cancel arrives mid-copy.
    const { harbor, worker } = await setup({}, { timing: { timeScale: 1, jitter: 0 } });
    const [stepId, uuid] = [randomUUID(), randomUUID()];
    await send(worker, command('prepare', stepId, uuid));
    await until(uuid, 'PREPARING');
    await send(worker, command('cancel', stepId, uuid));
    await until(uuid, 'CANCELLED');
    await waitFor('the execution to stop', async () =>
      harbor.stats().replication.executions.Stopped ? true : undefined,
    );
    expect(phasesOf(uuid)).not.toContain('AVAILABLE');
  });

  it('copies through a proxy-cache project, completing on its artifact webhook', async () => {
    const { harbor, worker } = await setup(
      {},
      {
        timing: { timeScale: 0.1, jitter: 0 },
        projects: [
          { name: 'skaha' },
          {
            name: 'mirror',
            public: true,
            proxy: { registryName: 'source', type: 'harbor', url: source.url },
          },
        ],
      },
    );
    const [stepId, uuid] = [randomUUID(), randomUUID()];
    await send(worker, command('prepare', stepId, uuid));
    await until(uuid, 'AVAILABLE');
    expect(harbor.stats().proxyCache.cached).toBe(1);
    expect(harbor.stats().requests.byRoute['POST /api/v2.0/replication/executions'] ?? 0).toBe(0);
    const local = await (await fetch(`${worker.url}/images/local?stepId=${stepId}`)).json();
    expect(local.localReference).toBe(`${new URL(harbor.url).host}/mirror/ivoa/webtop@${webtop}`);
  });

  it('with webhooks off, one batched list call per interval finds the finished execution; concurrent steps share a copy', async () => {
    const { harbor, worker } = await setup({ HARBOR_WEBHOOKS: 'off', HARBOR_WATCH_INTERVAL_SECONDS: '0.2' });
    const ids = Array.from({ length: 3 }, () => [randomUUID(), randomUUID()] as const);
    for (const [stepId, uuid] of ids) await send(worker, command('prepare', stepId, uuid));
    for (const [, uuid] of ids) await until(uuid, 'AVAILABLE');
    const routes = harbor.stats().requests.byRoute;
    expect(routes['GET /api/v2.0/replication/executions/{id}'] ?? 0).toBe(0);
    expect(routes['GET /api/v2.0/replication/executions']).toBeGreaterThan(0);
    // Three steps wanting the same image at once share one copy.
    expect(routes['POST /api/v2.0/replication/executions']).toBe(1);
    expect(harbor.stats().webhooks.delivered).toBe(0);
  });
});
