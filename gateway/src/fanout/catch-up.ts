import { parse } from 'graphql';
import { GATEWAY_IDENTITY } from './feed.ts';
import type { Execute, Fanout, ListedStep } from './hub.ts';

const CHANGED_SINCE = parse(/* GraphQL */ `
  query GatewayCatchUp($since: DateTime!, $after: String) {
    executionSteps(filter: { modifiedAfter: $since }, first: 200, after: $after) {
      edges {
        node {
          id
          meta {
            owner
            modified
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

interface Page {
  executionSteps: {
    edges: { node: ListedStep }[];
    pageInfo: { hasNextPage: boolean; endCursor: string | null };
  };
}

/**
 * A notice can be lost on its way from a broker to the gateway: Redis restarting, a broker dying
 * between its commit and its publish, the broker's stream reconnecting. Every `intervalMs`, and at
 * once when the feed says it may have missed some, the gateway lists the steps changed since its
 * previous look and hands them to the fan-out, which acts only on those its subscribers were not
 * told of; it also retries the reads and fetches that failed. A lost notice or a failed fetch
 * therefore delays an event by about one interval, and costs one small query per interval when
 * nothing was lost.
 */
export function startCatchUp(options: {
  execute: Execute;
  fanout: Fanout;
  intervalMs: number;
  /** Allowance for a commit that lands after a later one, and for clocks that differ. */
  overlapMs?: number;
  onError: (error: unknown) => void;
  now?: () => number;
}): { soon(): void; stop(): Promise<void> } {
  const now = options.now ?? Date.now;
  const overlap = options.overlapMs ?? 5000;
  let lookedAt = now();
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  async function look() {
    const startedAt = now();
    if (options.fanout.subscriberCount === 0) {
      // A new subscriber gets the current state first: nothing before it is owed.
      lookedAt = startedAt;
      return;
    }
    options.fanout.retryFailed();
    const since = new Date(lookedAt - overlap).toISOString();
    let after: string | null = null;
    do {
      const result = await options.execute(CHANGED_SINCE, { since, after }, GATEWAY_IDENTITY);
      if (result.errors?.length || !result.data) {
        throw new Error(`catch-up: ${result.errors?.[0]?.message ?? 'no data'}`);
      }
      const page = (result.data as unknown as Page).executionSteps;
      options.fanout.catchUp(page.edges.map((edge) => edge.node));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after && !stopped);
    lookedAt = startedAt;
  }

  function run() {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = look()
      .catch(options.onError)
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  }

  const timer = setInterval(run, options.intervalMs);
  timer.unref();
  return {
    soon: run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
