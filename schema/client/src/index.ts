/**
 * Typed client for the SRCNet execution gateway. Every operation of the API has a typed document
 * (generated from ./operations by `npm run codegen`); `request` and `subscribe` take one of them
 * and infer the variables and the result.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type ExecutionResult } from 'graphql';
import { createClient, type Client as WsClient } from 'graphql-ws';

export * from './generated/operations.ts';

export interface ExecutionClientOptions {
  /** The gateway's HTTP endpoint, e.g. http://localhost:4000/graphql. */
  url: string;
  /** The WebSocket endpoint; by default the HTTP one with ws(s):. */
  wsUrl?: string;
  /** A bearer token (`dev:<user>` in dev mode); sent as a header and as graphql-ws connectionParams. */
  token?: string | (() => string | undefined);
  fetch?: typeof globalThis.fetch;
  /** A WebSocket implementation for Node (e.g. the `ws` package); browsers have one. */
  webSocketImpl?: unknown;
  /** Told when the subscription socket connects, closes or retries, for an offline indicator. */
  onConnectionChange?: (state: 'connected' | 'closed' | 'connecting') => void;
}

/** A GraphQL error from the server, with every message it sent. */
export class GraphQLRequestError extends Error {
  constructor(
    readonly errors: ReadonlyArray<{
      message: string;
      path?: ReadonlyArray<string | number>;
      extensions?: Record<string, unknown>;
    }>,
  ) {
    super(errors.map((error) => error.message).join('; '));
    this.name = 'GraphQLRequestError';
  }
}

export interface ExecutionClient {
  request<R, V extends Record<string, unknown>>(document: TypedDocumentNode<R, V>, variables?: V): Promise<R>;
  /** Calls onNext with each event until the returned function is called; reconnects by itself. */
  subscribe<R, V extends Record<string, unknown>>(
    document: TypedDocumentNode<R, V>,
    variables: V,
    handlers: { next: (data: R) => void; error?: (error: unknown) => void; complete?: () => void },
  ): () => void;
  dispose(): Promise<void>;
}

export function createExecutionClient(options: ExecutionClientOptions): ExecutionClient {
  const token = () => (typeof options.token === 'function' ? options.token() : options.token);
  const doFetch = options.fetch ?? globalThis.fetch;
  let ws: WsClient | undefined;
  const socket = () =>
    (ws ??= createClient({
      url: options.wsUrl ?? options.url.replace(/^http/, 'ws'),
      webSocketImpl: options.webSocketImpl,
      connectionParams: () => {
        const value = token();
        return value ? { authorization: `Bearer ${value}` } : {};
      },
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => true,
      on: {
        connecting: () => options.onConnectionChange?.('connecting'),
        connected: () => options.onConnectionChange?.('connected'),
        closed: () => options.onConnectionChange?.('closed'),
      },
    }));

  return {
    async request(document, variables) {
      const value = token();
      const response = await doFetch(options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/graphql-response+json, application/json',
          ...(value ? { authorization: `Bearer ${value}` } : {}),
        },
        body: JSON.stringify({ query: print(document), variables: variables ?? {} }),
      });
      const result = (await response.json()) as ExecutionResult;
      if (result.errors?.length) throw new GraphQLRequestError(result.errors);
      if (!result.data) throw new Error(`the server answered ${response.status} with no data`);
      return result.data as never;
    },
    subscribe(document, variables, handlers) {
      return socket().subscribe(
        { query: print(document), variables },
        {
          next: (result) => {
            if (result.errors?.length) handlers.error?.(new GraphQLRequestError(result.errors));
            else if (result.data) handlers.next(result.data as never);
          },
          error: (error) => handlers.error?.(error),
          complete: () => handlers.complete?.(),
        },
      );
    },
    async dispose() {
      await ws?.dispose();
    },
  };
}
