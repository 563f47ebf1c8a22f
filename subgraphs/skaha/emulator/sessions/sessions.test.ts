import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { SessionJson } from '../../src/skaha/types.ts';
import type { SkahaEmulator, SkahaEmulatorOptions } from '../index.ts';
import { defaultContext, defaultImages, startSkahaEmulator } from '../index.ts';
import { eventsTable } from './views.ts';
import { javaSplit, planSession } from './validation.ts';

const HEADLESS = 'images.canfar.net/srcnet/hello-headless:1.0';
const NOTEBOOK = 'images.canfar.net/skaha/astroml:26.04';

let emulator: SkahaEmulator | undefined;
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

const FAST: SkahaEmulatorOptions = {
  timing: {
    headless: { startupMs: 60, runMs: 120 },
    notebook: { startupMs: 60 },
    desktop: { startupMs: 60 },
    carta: { startupMs: 60 },
    contributed: { startupMs: 60 },
    firefly: { startupMs: 60 },
    'desktop-app': { startupMs: 60 },
  },
  terminatingMs: 100,
};

async function start(options: SkahaEmulatorOptions = {}): Promise<SkahaEmulator> {
  emulator = await startSkahaEmulator({ ...FAST, ...options });
  return emulator;
}

interface Answer {
  status: number;
  text: string;
  type: string;
}

async function call(
  method: string,
  path: string,
  {
    user = 'alice',
    form,
    headers = {},
  }: {
    user?: string | null;
    form?: Record<string, string | string[]>;
    headers?: Record<string, string>;
  } = {},
): Promise<Answer> {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(form ?? {}))
    for (const item of Array.isArray(value) ? value : [value]) body.append(key, item);
  const response = await fetch(`${emulator!.apiUrl}${path}`, {
    method,
    headers: { ...(user === null ? {} : { authorization: `Bearer dev:${user}` }), ...headers },
    ...(form ? { body } : {}),
  });
  return {
    status: response.status,
    text: await response.text(),
    type: response.headers.get('content-type') ?? '',
  };
}

async function create(form: Record<string, string | string[]>, user = 'alice'): Promise<string> {
  const answer = await call('POST', '/session', { form, user });
  expect(answer, answer.text).toMatchObject({ status: 200 });
  expect(answer.text).toMatch(/^[a-z0-9]{8}\n$/);
  return answer.text.trim();
}

async function session(id: string, user = 'alice'): Promise<SessionJson> {
  const answer = await call('GET', `/session/${id}`, { user });
  expect(answer.status, answer.text).toBe(200);
  return JSON.parse(answer.text) as SessionJson;
}

async function until(id: string, status: string, timeoutMs = 3000): Promise<SessionJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const current = await session(id);
    if (current.status === status) return current;
    if (Date.now() > deadline) throw new Error(`session ${id} stayed ${current.status}, expected ${status}`);
    await sleep(15);
  }
}

describe('authentication', () => {
  it('needs a known bearer token, maps configured tokens, and refuses denied users', async () => {
    await start({ tokens: { 'opaque-token-1': 'carol' }, deniedUsers: ['mallory'] });
    const none = await call('GET', '/context', { user: null });
    expect(none).toMatchObject({ status: 401, type: expect.stringContaining('text/plain') });
    expect(
      (await call('GET', '/context', { user: null, headers: { authorization: 'Bearer unknown' } })).status,
    ).toBe(401);
    const carol = await call('GET', '/session', {
      user: null,
      headers: { authorization: 'Bearer opaque-token-1' },
    });
    expect(carol).toMatchObject({ status: 200, text: '[]' });
    expect((await call('GET', '/session', { user: 'mallory' })).status).toBe(403);
  });

  it('can refuse dev tokens', async () => {
    await start({ allowDevTokens: false });
    expect((await call('GET', '/context')).status).toBe(401);
  });
});

describe('create validation', () => {
  it.each([
    [{ image: HEADLESS }, 'name is required'],
    [{ name: 'has space', image: HEADLESS }, 'must match'],
    [{ name: 'ok' }, 'image is required'],
    [{ name: 'ok', image: 'docker.io/library/alpine:3' }, 'image not in a trusted repository'],
    [{ name: 'ok', image: HEADLESS, type: 'interact' }, 'Invalid session type: interact'],
    [{ name: 'ok', image: HEADLESS, type: 'desktop-app' }, 'Invalid session type'],
    [{ name: 'ok', image: HEADLESS, cores: 'two' }, "Invalid value for 'cores'"],
    [{ name: 'ok', image: HEADLESS, cores: '17' }, "Invalid value for 'cores'"],
    [{ name: 'ok', image: HEADLESS, ram: '3' }, "Invalid value for 'ram'"],
    [{ name: 'ok', image: HEADLESS, gpus: '0' }, "Invalid value for 'gpus'"],
    [{ name: 'ok', image: 'images.canfar.net/private/x:1' }, 'x-skaha-registry-auth'],
  ])('refuses %j with 400 "%s"', async (form, message) => {
    await start();
    const answer = await call('POST', '/session', { form: form as Record<string, string> });
    expect(answer.status).toBe(400);
    expect(answer.type).toContain('text/plain');
    expect(answer.text).toContain(message);
    expect(emulator!.stats().sessions.byStatus).toEqual({});
  });

  it('checks the registry credentials format, and accepts good ones for private images', async () => {
    await start();
    const form = { name: 'private', image: 'images.canfar.net/private/x:1' };
    const bad = Buffer.from('no-colon').toString('base64');
    expect((await call('POST', '/session', { form, headers: { 'x-skaha-registry-auth': bad } })).status).toBe(
      400,
    );
    const good = Buffer.from('robot$p+n:secret').toString('base64');
    expect(
      (await call('POST', '/session', { form, headers: { 'x-skaha-registry-auth': good } })).status,
    ).toBe(200);
  });

  it('accepts fractional cores whose integer part is an option, and gpus from the options', async () => {
    await start();
    const id = await create({ name: 'frac', image: HEADLESS, cores: '2.5', ram: '8', gpus: '1' });
    expect(await session(id)).toMatchObject({
      requestedCPUCores: '2.5',
      requestedRAM: '8.00',
      requestedGPUCores: '1',
    });
  });

  it('reads parameters from the query string too, and lower-cases and truncates the name', async () => {
    await start();
    const name = 'Query-' + 'X'.repeat(70);
    const query = new URLSearchParams({ name, image: HEADLESS });
    const answer = await call('POST', `/session?${query}`);
    expect(answer.status).toBe(200);
    const created = await session(answer.text.trim());
    expect(created.name).toBe(name.toLowerCase().slice(0, 63));
    expect(created.type).toBe('headless');
  });

  it('caps active interactive sessions per user but not headless ones', async () => {
    await start({ context: { ...defaultContext(), maxInteractiveSessions: 2 } });
    await create({ name: 'nb1', image: NOTEBOOK, type: 'notebook' });
    await create({ name: 'nb2', image: NOTEBOOK, type: 'notebook' });
    const third = await call('POST', '/session', {
      form: { name: 'nb3', image: NOTEBOOK, type: 'notebook' },
    });
    expect(third).toMatchObject({
      status: 400,
      text: 'User alice has reached the maximum of 2 active sessions.\n',
    });
    await create({ name: 'hl', image: HEADLESS });
    await create({ name: 'bobs', image: NOTEBOOK, type: 'notebook' }, 'bob');
  });

  it('keeps only env entries that split into exactly two parts, and splits args on single spaces', () => {
    const params = new URLSearchParams([
      ['name', 'Quirks'],
      ['image', HEADLESS],
      ['env', 'A=1'],
      ['env', 'B=x=y'],
      ['env', 'C='],
      ['env', 'D'],
      ['args', 'one  two'],
    ]);
    const rules = {
      context: defaultContext(),
      registryHosts: ['images.canfar.net'],
      images: defaultImages(),
    };
    const plan = planSession('alice', params, undefined, rules, []);
    expect(plan.env).toEqual({ A: '1' });
    expect(plan.args).toEqual(['one', '', 'two']);
    expect(plan.name).toBe('quirks');
    expect(javaSplit('a=', '=')).toEqual(['a']);
    expect(javaSplit('=b', '=')).toEqual(['', 'b']);
  });
});

describe('lifecycle', () => {
  it('runs a headless session Pending → Running → Completed, starting the clock at admission', async () => {
    await start();
    const id = await create({
      name: 'job',
      image: HEADLESS,
      cmd: 'python',
      args: 'run.py --fast',
      env: ['MODE=fast', 'TOKEN=a=b', 'EMPTY='],
    });
    const pending = await session(id);
    expect(pending.status).toBe('Pending');
    const running = await until(id, 'Running');
    expect(running.cpuCoresInUse).toBeDefined();
    const completed = await until(id, 'Completed');
    expect(completed.cpuCoresInUse).toBeUndefined();
    expect(Date.parse(completed.expiryTime!) - Date.parse(completed.startTime!)).toBe(345_600_000);
    expect((await call('GET', `/session/${id}?view=logs`)).text).toContain(
      'python run.py --fast (env: MODE)\n',
    );
  });

  it('keeps notebooks running, with the connectURL of each type', async () => {
    await start();
    const urls: Record<string, string> = {
      desktop: 'https://sessions.canfar.emulator/session/desktop/ID/?password=ID&path=session/desktop/ID/',
      notebook: 'https://sessions.canfar.emulator/session/notebook/ID/lab/tree/arc/home/alice?token=ID',
      carta: 'https://sessions.canfar.emulator/session/carta/ID/',
      contributed: 'https://sessions.canfar.emulator/session/contrib/ID/',
      firefly: 'https://sessions.canfar.emulator/session/firefly/ID/firefly/',
    };
    const ids: Record<string, string> = {};
    for (const type of Object.keys(urls)) ids[type] = await create({ name: type, image: NOTEBOOK, type });
    await sleep(300);
    for (const [type, url] of Object.entries(urls)) {
      const current = await session(ids[type]!);
      expect(current.status).toBe('Running');
      expect(current.connectURL).toBe(url.replaceAll('ID', ids[type]!));
    }
  });

  it('fails sessions by the seeded failure rate and by image rule, saying why in events and logs', async () => {
    await start({
      failureRate: 1,
      failAfterMs: 50,
      failureMessage: 'Error: out of memory',
      imageRules: [{ image: 'images.canfar.net/skaha/term*', outcome: 'Completed', runMs: 50 }],
    });
    const failing = await create({ name: 'failing', image: HEADLESS });
    const ruled = await create({ name: 'ruled', image: 'images.canfar.net/skaha/terminal:1.1.2' });
    await until(failing, 'Failed');
    await until(ruled, 'Completed');
    const events = (await call('GET', `/session/${failing}?view=events`)).text;
    expect(events).toMatch(/Warning\s+BackOff\s+Error: out of memory/);
    expect((await call('GET', `/session/${failing}?view=logs`)).text).toContain('Error: out of memory');
    const notebook = await create({ name: 'crashing', image: NOTEBOOK, type: 'notebook' });
    await until(notebook, 'Running');
    await until(notebook, 'Failed');
  });

  it('fails sessions whose deadline passes, and renew moves the deadline', async () => {
    await start({ expirySeconds: 1 });
    const expiring = await create({ name: 'expiring', image: NOTEBOOK, type: 'notebook' });
    const renewed = await create({ name: 'renewed', image: NOTEBOOK, type: 'notebook' });
    await until(renewed, 'Running');
    await sleep(500);
    expect((await call('POST', `/session/${renewed}`, { form: { action: 'renew' } })).status).toBe(200);
    const failed = await until(expiring, 'Failed', 2000);
    expect(failed.startTime).toBeDefined();
    expect((await call('GET', `/session/${expiring}?view=events`)).text).toContain('DeadlineExceeded');
    expect((await session(renewed)).status).toBe('Running');
    await until(renewed, 'Failed', 3000);
  });

  it('answers renew mistakes as Skaha does', async () => {
    await start();
    const id = await create({ name: 'job', image: HEADLESS });
    expect(await call('POST', `/session/${id}`)).toMatchObject({
      status: 400,
      text: 'Cannot modify an existing session\n',
    });
    expect((await call('POST', `/session/${id}`, { form: { action: 'stop' } })).text).toContain(
      'unrecognized action',
    );
    await until(id, 'Completed');
    expect((await call('POST', `/session/${id}`, { form: { action: 'renew' } })).status).toBe(400);
  });

  it('keeps sessions beyond cluster capacity Pending, without a pod, until capacity frees', async () => {
    await start({ cluster: { cores: 4 } });
    const first = await create({ name: 'big1', image: NOTEBOOK, type: 'notebook', cores: '4', ram: '8' });
    const second = await create({ name: 'big2', image: NOTEBOOK, type: 'notebook', cores: '4', ram: '8' });
    await until(first, 'Running');
    const waiting = await session(second);
    expect(waiting.status).toBe('Pending');
    expect(waiting.startTime).toBeUndefined();
    expect((await call('GET', `/session/${second}?view=events`)).status).toBe(404);
    expect(JSON.parse((await call('GET', '/session?view=stats')).text).cores).toMatchObject({
      requestedCPUCores: 4,
      cpuCoresAvailable: 4,
    });
    await call('DELETE', `/session/${first}`);
    expect((await session(second)).status).toBe('Pending');
    await until(second, 'Running');
  });

  it('deletes through Terminating to 404, only the owner’s, and answers 200 for unknown ids', async () => {
    await start();
    const id = await create({ name: 'nb', image: NOTEBOOK, type: 'notebook' });
    expect((await call('GET', `/session/${id}`, { user: 'bob' })).status).toBe(404);
    expect((await call('DELETE', `/session/${id}`, { user: 'bob' })).status).toBe(200);
    expect((await session(id)).status).not.toBe('Terminating');
    expect((await call('DELETE', `/session/${id}`)).status).toBe(200);
    expect((await session(id)).status).toBe('Terminating');
    await sleep(150);
    expect(await call('GET', `/session/${id}`)).toMatchObject({
      status: 404,
      text: `session ${id} not found\n`,
    });
    expect((await call('DELETE', '/session/unknown1')).status).toBe(200);
  });
});

describe('views', () => {
  it('reports fixed and flexible sessions as Skaha does', async () => {
    await start();
    const fixed = await create({ name: 'fixed', image: HEADLESS, ram: '4' });
    const flexible = await create({ name: 'flex', image: HEADLESS, cores: '2' });
    expect(await session(fixed)).toMatchObject({
      isFixedResources: true,
      requestedRAM: '4.00',
      requestedCPUCores: '1',
    });
    const flex = await session(flexible);
    expect(flex.isFixedResources).toBe(false);
    expect(flex).not.toHaveProperty('requestedRAM');
    expect(flex).not.toHaveProperty('requestedCPUCores');
    expect(flex.requestedGPUCores).toBe('0');
  });

  it('filters lists by type, case-insensitive status and view, and shows everyone in view=all', async () => {
    await start();
    const nb = await create({ name: 'nb', image: NOTEBOOK, type: 'notebook' });
    const hl = await create({ name: 'hl', image: HEADLESS });
    await create({ name: 'other', image: HEADLESS }, 'bob');
    await until(nb, 'Running');
    const list = async (query: string) =>
      (JSON.parse((await call('GET', `/session${query}`)).text) as SessionJson[]).map((s) => s.id);
    expect((await list('')).sort()).toEqual([nb, hl].sort());
    expect(await list('?type=notebook')).toEqual([nb]);
    expect(await list('?status=RUNNING&type=notebook')).toEqual([nb]);
    expect(await list('?view=interactive')).toEqual([nb]);
    const everyone = JSON.parse((await call('GET', '/session?view=all')).text) as Record<string, unknown>[];
    expect(everyone).toHaveLength(3);
    for (const entry of everyone)
      expect(Object.keys(entry).every((k) => ['userid', 'type', 'status', 'startTime'].includes(k))).toBe(
        true,
      );
  });

  it('attaches desktop apps, lists them only on request, and removes them with their desktop', async () => {
    await start();
    const desktop = await create({
      name: 'desk',
      image: 'images.canfar.net/skaha/desktop:1.2.0',
      type: 'desktop',
    });
    const attach = await call('POST', `/session/${desktop}/app`, {
      form: { image: 'images.canfar.net/skaha/terminal:1.1.2' },
    });
    expect(attach.text).toMatch(/^[a-z0-9]{3}\n$/);
    const appid = attach.text.trim();
    const app = JSON.parse((await call('GET', `/session/${desktop}/app/${appid}`)).text) as SessionJson;
    expect(app).toMatchObject({ id: desktop, appid, type: 'desktop-app', connectURL: '' });
    expect(JSON.parse((await call('GET', '/session')).text)).toHaveLength(1);
    expect(JSON.parse((await call('GET', '/session?type=desktop-app')).text)).toHaveLength(1);
    expect(JSON.parse((await call('GET', '/session/anything/app')).text)).toHaveLength(1);
    const notDesktop = await create({ name: 'hl', image: HEADLESS });
    expect(
      (
        await call('POST', `/session/${notDesktop}/app`, {
          form: { image: 'images.canfar.net/skaha/terminal:1.1.2' },
        })
      ).status,
    ).toBe(400);
    await call('DELETE', `/session/${desktop}`);
    await sleep(150);
    expect((await call('GET', `/session/${desktop}/app/${appid}`)).status).toBe(404);
  });

  it('serves /image by type, /context and /repository, all authenticated', async () => {
    await start({ registryHosts: ['images.canfar.net', 'harbor.srcnet.example'] });
    const carta = JSON.parse((await call('GET', '/image?type=carta')).text) as {
      id: string;
      types: string[];
    }[];
    expect(carta.map((i) => i.id)).toEqual(['images.canfar.net/skaha/carta:4.1']);
    expect((await call('GET', '/image?type=nope')).status).toBe(400);
    expect(JSON.parse((await call('GET', '/context')).text)).toEqual(defaultContext());
    expect(JSON.parse((await call('GET', '/repository')).text)).toEqual([
      'images.canfar.net',
      'harbor.srcnet.example',
    ]);
    expect((await call('GET', '/repository', { user: null })).status).toBe(401);
  });

  it('prints events as a kubectl table, or <none>', () => {
    expect(eventsTable([])).toBe('<none>\n');
    const table = eventsTable([{ type: 'Normal', reason: 'Started', message: 'Started container x', at: 0 }]);
    expect(table.split('\n')[0]).toMatch(/^TYPE {5}REASON {4}MESSAGE {15}FIRST-TIME {13}LAST-TIME$/);
  });
});
