/**
 * The portal's HTTP server: the built page (portal/dist), its configuration at /config.json, a
 * reader that turns a pasted IVOA document (JSON or YAML, any supported schema version) into a
 * 1.0.7 request at POST /api/documents, and /healthz. GraphQL goes from the browser straight to
 * the gateway, which answers CORS preflights itself.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, sep } from 'node:path';
import {
  DocumentSyntaxError,
  formatOf,
  parseDocument,
  upgradeExecutionRequest,
} from '@srcnet/execution-step-schema';
import type { PageConfig, PortalConfig } from './config.ts';
import { DIST_DIR } from './build.ts';

/** A pasted document is a few kilobytes; this leaves room for long data lists. */
const MAX_DOCUMENT_BYTES = 1024 * 1024;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

/** What POST /api/documents answers: the request to send as `requestOffers(request:)`, or why not. */
export type DocumentAnswer =
  { request: Record<string, unknown>; notes: string[] } | { issues: { path: string; message: string }[] };

function json(res: ServerResponse, status: number, body: unknown) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_DOCUMENT_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function readDocument(body: string, contentType: string | undefined): DocumentAnswer {
  let parsed: unknown;
  try {
    parsed = parseDocument(body, formatOf(contentType));
  } catch (error) {
    if (error instanceof DocumentSyntaxError) return { issues: [{ path: '/', message: error.message }] };
    throw error;
  }
  const { document, notes, issues } = upgradeExecutionRequest(parsed);
  if (issues.length) return { issues: issues.map(({ path, message }) => ({ path, message })) };
  return { request: document as Record<string, unknown>, notes };
}

function serveFile(req: IncomingMessage, res: ServerResponse, pathname: string) {
  const relative = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  let file = join(DIST_DIR, relative);
  if (!file.startsWith(DIST_DIR + sep) && file !== DIST_DIR) {
    res.writeHead(404).end();
    return;
  }
  // Paths that name no file are the page's own (a bookmarked view); assets that are missing are 404s.
  if (!existsSync(file) || statSync(file).isDirectory()) {
    if (extname(relative)) {
      res.writeHead(404).end();
      return;
    }
    file = join(DIST_DIR, 'index.html');
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
    // Vite names assets by content hash, so they never change; the page itself must be re-read.
    'cache-control': file.includes(`${sep}assets${sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}

export function portalHandler(config: PortalConfig) {
  const page: PageConfig = { gatewayUrl: config.gatewayUrl, authMode: config.authMode };
  return async (req: IncomingMessage, res: ServerResponse) => {
    const { pathname } = new URL(req.url ?? '/', 'http://portal');
    if (pathname === '/healthz') return json(res, 200, { status: 'ok' });
    if (pathname === '/config.json') return json(res, 200, page);
    if (pathname === '/api/documents') {
      if (req.method !== 'POST') return json(res, 405, { error: 'POST a JSON or YAML document' });
      const body = await readBody(req);
      if (body === undefined)
        return json(res, 413, {
          issues: [{ path: '/', message: `the document is over ${MAX_DOCUMENT_BYTES} bytes` }],
        });
      const answer = readDocument(body, req.headers['content-type']);
      return json(res, 'issues' in answer ? 400 : 200, answer);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { error: 'GET only' });
    serveFile(req, res, pathname);
  };
}

export interface RunningPortal {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startPortal(config: PortalConfig): Promise<RunningPortal> {
  const handle = portalHandler(config);
  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      console.error('portal:', error);
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  await new Promise<void>((listening, failed) => {
    server.once('error', failed);
    server.listen(config.port, config.host, listening);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${config.host}:${port}/`,
    server,
    close: () =>
      new Promise((closed) => {
        server.close(() => closed());
        server.closeAllConnections();
      }),
  };
}
