import { GraphQLError, type ExecutionResult } from 'graphql';

/**
 * One subscriber's pending events, as the async iterator the server reads. It starts held, so that
 * events arriving while the current state is fetched wait behind it, and it is bounded: a
 * subscriber that falls that far behind is told so and ended, and gets the current state again
 * when it resubscribes, instead of holding the gateway's memory.
 */
export class SubscriberQueue implements AsyncIterableIterator<ExecutionResult> {
  private items: ExecutionResult[] = [];
  private held = true;
  private ended = false;
  private waiting: ((result: IteratorResult<ExecutionResult>) => void) | undefined;

  constructor(
    private readonly limit: number,
    private readonly onEnd: () => void,
  ) {}

  push(item: ExecutionResult): boolean {
    if (this.ended) return false;
    if (!this.held && this.waiting) {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting({ value: item, done: false });
      return true;
    }
    if (this.items.length >= this.limit) {
      this.items = [
        {
          errors: [
            new GraphQLError(
              `this subscription fell ${this.limit} events behind and was ended; subscribe again to get the current state`,
              { extensions: { code: 'SUBSCRIBER_TOO_SLOW' } },
            ),
          ],
        },
      ];
      this.finish();
      return false;
    }
    this.items.push(item);
    return true;
  }

  /**
   * Delivers `first` (the current state), then whatever arrived meanwhile and is newer, then each
   * new event. An event that arrived while the current state was read may already be in it: one
   * equal to a state in `first` is dropped, and for a single step so is every event before it,
   * since events come in order and that state is newer than they are.
   */
  release(first: ExecutionResult[], oneStep: boolean): void {
    const current = new Set(first.map((result) => JSON.stringify(result)));
    const seen = this.items.map((item) => current.has(JSON.stringify(item)));
    const newer = oneStep
      ? this.items.slice(seen.lastIndexOf(true) + 1)
      : this.items.filter((_, i) => !seen[i]);
    this.items = [...first, ...newer];
    this.held = false;
    this.wake();
  }

  next(): Promise<IteratorResult<ExecutionResult>> {
    if (!this.held && this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    this.items = [];
    this.finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator]() {
    return this;
  }

  private finish() {
    if (this.ended) return;
    this.ended = true;
    this.onEnd();
    this.wake();
  }

  private wake() {
    if (!this.waiting || this.held) return;
    const waiting = this.waiting;
    if (this.items.length) {
      this.waiting = undefined;
      waiting({ value: this.items.shift()!, done: false });
    } else if (this.ended) {
      this.waiting = undefined;
      waiting({ value: undefined, done: true });
    }
  }
}
