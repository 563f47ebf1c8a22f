import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SessionCallbackJson } from '../../src/skaha/types.ts';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: SessionCallbackJson;
  /** The status this receiver answered. */
  answered: number;
}

/** A callback endpoint for tests: records every request and answers as told. */
export interface CallbackReceiver {
  url: string;
  received: Received[];
  /** Answered with 2xx. */
  accepted(): SessionCallbackJson[];
  /** Answer the next `count` requests with `status` (default 503). */
  failNext(count: number, status?: number): void;
  /** Resolves once `check` holds for what was received; rejects after `timeoutMs`. */
  waitFor(check: (received: Received[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<CallbackReceiver> {
  const received: Received[] = [];
  let failures: { count: number; status: number } = { count: 0, status: 503 };
  const server = createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      const answered = failures.count > 0 ? failures.status : 204;
      if (failures.count > 0) failures.count--;
      received.push({
        headers: request.headers,
        body,
        json: JSON.parse(body) as SessionCallbackJson,
        answered,
      });
      response.writeHead(answered).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/callbacks/skaha`,
    received,
    accepted: () => received.filter((r) => r.answered < 300).map((r) => r.json),
    failNext(count, status = 503) {
      failures = { count, status };
    },
    async waitFor(check, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!check(received)) {
        if (Date.now() > deadline)
          throw new Error(
            `receiver: condition not met within ${timeoutMs} ms; got ${JSON.stringify(received.map((r) => r.json))}`,
          );
        await sleep(10);
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
