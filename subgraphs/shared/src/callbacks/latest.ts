/**
 * `POST /components/latest` on every worker: the broker asks, in one signed call, for the last
 * callback the worker generated for each of up to 1000 components, and applies what it missed
 * (docs/reliability.md, "Lost notifications").
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { traceHeaders } from '../tracing/index.ts';
import { MAX_LATEST_COMPONENTS } from './outbox.ts';
import { signedHeaders, verify } from './signature.ts';

export const LATEST_CALLBACKS_PATH = '/components/latest';

/** Room for MAX_LATEST_COMPONENTS uuids and their quotes, with margin; more is refused with 413. */
const BODY_LIMIT = 128 * 1024;

export interface LatestCallbacksOptions {
  /** The secret the broker signs its commands with. */
  secret: string;
  outbox: { latest(components: readonly string[]): Promise<Ivoa.ComponentCallback[]> };
}

const issue = (path: string, rule: string, message: string) => ({ issues: [{ path, rule, message }] });

/** Registers the route; the app must hand it the raw body as a string, as the workers' parsers do. */
export function registerLatestCallbacks(app: FastifyInstance, options: LatestCallbacksOptions): void {
  app.post(LATEST_CALLBACKS_PATH, { bodyLimit: BODY_LIMIT }, async (request, reply) => {
    const body = typeof request.body === 'string' ? request.body : '';
    const check = verify(options.secret, request.headers, body);
    if (!check.ok) return reply.code(401).send({ error: check.reason });
    let document: unknown;
    try {
      document = JSON.parse(body);
    } catch (error) {
      return reply.code(400).send({ error: `the body is not JSON: ${(error as Error).message}` });
    }
    if (typeof document !== 'object' || document === null || Array.isArray(document))
      return reply
        .code(400)
        .send(issue('', 'type', 'the body must be an object: {"components": ["<componentUuid>", ...]}'));
    const components = (document as { components?: unknown }).components;
    if (!Array.isArray(components))
      return reply.code(400).send(issue('/components', 'required', 'must be an array of component uuids'));
    if (components.length > MAX_LATEST_COMPONENTS)
      return reply
        .code(400)
        .send(
          issue(
            '/components',
            'max-items',
            `at most ${MAX_LATEST_COMPONENTS} components per call; got ${components.length}`,
          ),
        );
    const bad = components.findIndex((uuid) => typeof uuid !== 'string' || uuid === '' || uuid.length > 100);
    if (bad >= 0)
      return reply
        .code(400)
        .send(
          issue(`/components/${bad}`, 'type', 'must be a component uuid (a string of 1 to 100 characters)'),
        );
    return { callbacks: await options.outbox.latest(components as string[]) };
  });
}

/**
 * The broker's side: asks the worker at `workerUrl` (its base address) for the last callbacks of
 * these components, signed like a command. What comes back is the worker's word, unchecked: the
 * caller validates each callback before it applies it.
 */
export async function fetchLatestCallbacks(
  workerUrl: string,
  secret: string,
  components: readonly string[],
  timeoutMs = 10_000,
): Promise<unknown[]> {
  const url = `${workerUrl.replace(/\/$/, '')}${LATEST_CALLBACKS_PATH}`;
  const body = JSON.stringify({ components });
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...signedHeaders(secret, body, randomUUID()), ...traceHeaders() },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok)
    throw new Error(`${url} answered ${response.status}: ${(await response.text()).slice(0, 200)}`);
  const answer = (await response.json()) as { callbacks?: unknown } | null;
  if (!Array.isArray(answer?.callbacks)) throw new Error(`${url} answered without a callbacks array`);
  return answer.callbacks as unknown[];
}
