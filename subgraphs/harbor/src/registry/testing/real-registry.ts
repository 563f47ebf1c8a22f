/**
 * Runs Debian's `docker-registry` (distribution 2.8) on a free loopback port with a temporary
 * storage directory, so the OCI client can be checked against the reference implementation
 * and not only against our emulator. With `auth: 'token'` the registry demands Bearer tokens
 * from a small token service started here, signed with a throw-away key made by `openssl`.
 *
 * CI installs the binary with `apt-get update && apt-get install -y docker-registry`.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash, createPrivateKey, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';

export const DOCKER_REGISTRY_BINARY = process.env.DOCKER_REGISTRY_BIN ?? '/usr/bin/docker-registry';
export const DOCKER_REGISTRY_INSTALL = 'apt-get update && apt-get install -y docker-registry';

export function dockerRegistryAvailable(): boolean {
  return existsSync(DOCKER_REGISTRY_BINARY);
}

export interface RealRegistry {
  url: string;
  /** Credentials the token service accepts (token mode only). */
  credentials?: { username: string; password: string };
  /** Token requests served so far (token mode only). */
  tokenRequests(): number;
  close(): Promise<void>;
}

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** libtrust's key id, which distribution uses to find the key that signed a token. */
function libtrustKeyId(spkiDer: Buffer): string {
  const hash = createHash('sha256').update(spkiDer).digest().subarray(0, 30);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of hash) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)!.join(':');
}

interface TokenService {
  realm: string;
  certificatePath: string;
  requests(): number;
  close(): Promise<void>;
}

async function startTokenService(
  dir: string,
  service: string,
  issuer: string,
  credentials: { username: string; password: string },
): Promise<TokenService> {
  const keyPath = join(dir, 'token.key');
  const certificatePath = join(dir, 'token.crt');
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certificatePath,
    '-days',
    '1',
    '-subj',
    '/CN=harbor-test-token-issuer',
  ]);
  const key = createPrivateKey(await readFile(keyPath));
  const certificate = new X509Certificate(await readFile(certificatePath));
  const kid = libtrustKeyId(certificate.publicKey.export({ type: 'spki', format: 'der' }));
  const expected = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
  let count = 0;
  const server = createServer((request, response) => {
    count += 1;
    void (async () => {
      if (request.headers.authorization !== expected) {
        response
          .writeHead(401, { 'content-type': 'application/json' })
          .end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
        return;
      }
      const url = new URL(request.url ?? '/', 'http://localhost');
      const access = url.searchParams.getAll('scope').flatMap((scope) => {
        const [type, name, actions] = [
          scope.slice(0, scope.indexOf(':')),
          scope.slice(scope.indexOf(':') + 1, scope.lastIndexOf(':')),
          scope.slice(scope.lastIndexOf(':') + 1),
        ];
        return type && name ? [{ type, name, actions: actions.split(',') }] : [];
      });
      const token = await new SignJWT({ access })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
        .setIssuer(issuer)
        .setSubject(credentials.username)
        .setAudience(service)
        .setIssuedAt()
        .setNotBefore('-10s')
        .setExpirationTime('5m')
        .setJti(randomUUID())
        .sign(key);
      response
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ token, expires_in: 300, issued_at: new Date().toISOString() }));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    certificatePath,
    requests: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Starts a registry; resolves once it answers on `/v2/`. */
export async function startRealRegistry(options: { auth?: 'none' | 'token' } = {}): Promise<RealRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'harbor-real-registry-'));
  const port = await freePort();
  const credentials = { username: 'tester', password: 'Passw0rd!' };
  const tokens =
    options.auth === 'token'
      ? await startTokenService(dir, 'test-registry', 'test-issuer', credentials)
      : undefined;
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    ...(tokens
      ? [
          'auth:',
          '  token:',
          `    realm: ${tokens.realm}`,
          '    service: test-registry',
          '    issuer: test-issuer',
          `    rootcertbundle: ${tokens.certificatePath}`,
        ]
      : []),
  ].join('\n');
  const configPath = join(dir, 'config.yml');
  await writeFile(configPath, `${config}\n`);

  const child = spawn(DOCKER_REGISTRY_BINARY, ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const close = async () => {
    child.kill('SIGTERM');
    await exited;
    await tokens?.close();
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      await close();
      throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr.trim()}`);
    }
    try {
      const response = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await response.body?.cancel();
      if (response.status === 200 || response.status === 401) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await close();
      throw new Error(`docker-registry did not answer on ${url} within 15 s: ${stderr.trim()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { url, ...(tokens ? { credentials } : {}), tokenRequests: () => tokens?.requests() ?? 0, close };
}
