import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient as createSseClient } from 'graphql-sse';
import { collect, testStack } from './support/stack.ts';

const WATCH =
  'subscription Watch($id: ID) { executionStepChanged(id: $id) { id phase skahaSession { status } } }';
type Event = { executionStepChanged: { id: string; phase: string; skahaSession: { status: string } | null } };

let stack: Awaited<ReturnType<typeof testStack>>;
/** Lets the fan-out process the notice of a change just made. */
const settle = () => new Promise((done) => setTimeout(done, 100));
beforeAll(async () => {
  stack = await testStack();
});
afterAll(() => stack.close());

describe('executionStepChanged through the fan-out', () => {
  it('sends the current state first, then every transition in order, each with the other subgraph field as it is now', async () => {
    const step = stack.broker.create('carol');
    await settle();
    const watch = collect<Event>(stack.ws('dev:carol'), WATCH, { id: step.id });
    await watch.until(1);
    for (const [phase, status] of [
      ['ACCEPTED', 'Pending'],
      ['PREPARING', 'Starting'],
      ['RUNNING', 'Running'],
      ['COMPLETED', 'Completed'],
    ]) {
      stack.worker.status.set(step.id, status!);
      stack.broker.move(step.id, phase!);
      await watch.until(watch.events.length + 1);
    }
    expect(watch.events.map((event) => event.data!.executionStepChanged.phase)).toEqual([
      'OFFERED',
      'ACCEPTED',
      'PREPARING',
      'RUNNING',
      'COMPLETED',
    ]);
    // A field cached per subscription would repeat its first value here.
    expect(watch.events.map((event) => event.data!.executionStepChanged.skahaSession!.status)).toEqual([
      'Pending',
      'Pending',
      'Starting',
      'Running',
      'Completed',
    ]);
    watch.stop();
  });

  it('sends each transition once even when several are committed together', async () => {
    const step = stack.broker.create('dora');
    const watch = collect<Event>(stack.ws('dev:dora'), WATCH, {});
    await watch.until(1);
    stack.broker.move(step.id, 'ACCEPTED');
    stack.broker.move(step.id, 'WAITING');
    stack.broker.move(step.id, 'PREPARING');
    await watch.until(4);
    await new Promise((done) => setTimeout(done, 200));
    expect(watch.events.map((event) => event.data!.executionStepChanged.phase)).toEqual([
      'OFFERED',
      'ACCEPTED',
      'WAITING',
      'PREPARING',
    ]);
    watch.stop();
  });

  it('sends a change without a transition only when what the subscriber selected changed', async () => {
    const step = stack.broker.create('gina');
    stack.worker.status.set(step.id, 'Pending');
    await settle();
    const watch = collect<Event>(stack.ws('dev:gina'), WATCH, { id: step.id });
    await watch.until(1);
    stack.broker.touch(step.id);
    await settle();
    // The modification shows in no field the subscriber selected: nothing to send.
    expect(watch.events).toHaveLength(1);
    stack.worker.status.set(step.id, 'Running');
    stack.broker.touch(step.id);
    await watch.until(2);
    expect(watch.events.map((event) => event.data!.executionStepChanged.skahaSession!.status)).toEqual([
      'Pending',
      'Running',
    ]);
    watch.stop();
  });

  it('fetches once per change for all subscribers that asked the same, and delivers to every one', async () => {
    const step = stack.broker.create('erin');
    const watchers = Array.from({ length: 50 }, () => collect<Event>(stack.ws('dev:erin'), WATCH, {}));
    await Promise.all(watchers.map((watch) => watch.until(1)));
    const before = stack.worker.stats.requests;
    stack.broker.move(step.id, 'ACCEPTED');
    await Promise.all(watchers.map((watch) => watch.until(2)));
    expect(watchers.every((watch) => watch.events[1]?.data?.executionStepChanged.phase === 'ACCEPTED')).toBe(
      true,
    );
    expect(stack.worker.stats.requests - before).toBe(1);
    watchers.forEach((watch) => watch.stop());
  });

  it("gives a user only their own steps; an admin gets everyone's", async () => {
    const mine = collect<Event>(stack.ws('dev:frank'), WATCH, {});
    const admin = collect<Event>(stack.ws('dev:admin'), WATCH, {});
    await new Promise((done) => setTimeout(done, 300));
    const before = { mine: mine.events.length, admin: admin.events.length };
    const other = stack.broker.create('grace');
    const own = stack.broker.create('frank');
    await admin.until(before.admin + 2);
    await mine.until(before.mine + 1);
    await new Promise((done) => setTimeout(done, 200));
    const ids = (events: { data?: Event }[]) => events.map((event) => event.data!.executionStepChanged.id);
    expect(ids(mine.events)).toContain(own.id);
    expect(ids(mine.events)).not.toContain(other.id);
    expect(ids(admin.events)).toEqual(expect.arrayContaining([own.id, other.id]));
    mine.stop();
    admin.stop();
  });

  it("refuses to watch another user's step, naming no more than that it is not found", async () => {
    const step = stack.broker.create('heidi');
    const watch = collect(stack.ws('dev:ivan'), WATCH, { id: step.id });
    await watch.until(1);
    stack.broker.move(step.id, 'ACCEPTED');
    await new Promise((done) => setTimeout(done, 200));
    expect(watch.ended).toBeDefined();
    expect(JSON.stringify(watch.events.concat(watch.ended as never))).toContain(`no step ${step.id}`);
    expect(watch.events.some((event) => event.data)).toBe(false);
  });

  it('serves the same subscription over SSE', async () => {
    const step = stack.broker.create('judy');
    await settle();
    const client = createSseClient({ url: stack.gateway.url, headers: { authorization: 'Bearer dev:judy' } });
    const events = client.iterate<Event>({ query: WATCH, variables: { id: step.id } });
    const first = await events.next();
    stack.broker.move(step.id, 'ACCEPTED');
    const second = await events.next();
    await events.return?.();
    client.dispose();
    expect(first.value?.data?.executionStepChanged.phase).toBe('OFFERED');
    expect(second.value?.data?.executionStepChanged.phase).toBe('ACCEPTED');
  });

  it('counts active subscriptions and delivered events in /metrics', async () => {
    const step = stack.broker.create('ken');
    const watch = collect<Event>(stack.ws('dev:ken'), WATCH, { id: step.id });
    await watch.until(1);
    stack.broker.move(step.id, 'ACCEPTED');
    await watch.until(2);
    const metrics = await (await fetch(stack.gateway.url.replace('/graphql', '/metrics'))).text();
    expect(Number(/^gateway_subscriptions_active (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(1);
    expect(Number(/^gateway_events_delivered_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/^gateway_event_delivery_seconds_bucket/m);
    watch.stop();
    await new Promise((done) => setTimeout(done, 100));
    const after = await (await fetch(stack.gateway.url.replace('/graphql', '/metrics'))).text();
    expect(Number(/^gateway_subscriptions_active (\d+)/m.exec(after)?.[1])).toBeLessThan(
      Number(/^gateway_subscriptions_active (\d+)/m.exec(metrics)?.[1]),
    );
  });
});

describe('catching up on lost notices', () => {
  let lossy: Awaited<ReturnType<typeof testStack>>;
  beforeAll(async () => {
    lossy = await testStack({ env: { CATCH_UP_SECONDS: '1' } });
  });
  afterAll(() => lossy.close());

  it('delivers, in order and once, the transitions whose notices were lost, within one interval', async () => {
    const all = collect<Event>(lossy.ws('dev:lou'), WATCH, {});
    await new Promise((done) => setTimeout(done, 300));
    const seen = lossy.broker.create('lou');
    await settle();
    const one = collect<Event>(lossy.ws('dev:lou'), WATCH, { id: seen.id });
    await all.until(1);
    await one.until(1);
    lossy.broker.loseNotices(true);
    const unseen = lossy.broker.create('lou');
    for (const phase of ['ACCEPTED', 'PREPARING', 'COMPLETED']) {
      lossy.broker.move(seen.id, phase);
      lossy.broker.move(unseen.id, phase);
    }
    const lostAt = Date.now();
    await one.until(4);
    await all.until(1 + 3 + 4);
    const caughtUpMs = Date.now() - lostAt;
    lossy.broker.loseNotices(false);
    await new Promise((done) => setTimeout(done, 1500));
    const phases = (events: { data?: Event }[], id: string) =>
      events
        .filter((event) => event.data!.executionStepChanged.id === id)
        .map((event) => event.data!.executionStepChanged.phase);
    expect(phases(one.events, seen.id)).toEqual(['OFFERED', 'ACCEPTED', 'PREPARING', 'COMPLETED']);
    expect(phases(all.events, seen.id)).toEqual(['OFFERED', 'ACCEPTED', 'PREPARING', 'COMPLETED']);
    expect(phases(all.events, unseen.id)).toEqual(['OFFERED', 'ACCEPTED', 'PREPARING', 'COMPLETED']);
    expect(caughtUpMs).toBeLessThan(5000);
    all.stop();
    one.stop();
  });

  it('fetches again, in order, the events it could not fetch for their subscribers', async () => {
    const step = lossy.broker.create('mo');
    await settle();
    const watch = collect<Event>(lossy.ws('dev:mo'), WATCH, { id: step.id });
    await watch.until(1);
    lossy.broker.failUserReads(true);
    lossy.broker.move(step.id, 'ACCEPTED');
    lossy.broker.move(step.id, 'COMPLETED');
    await new Promise((done) => setTimeout(done, 500));
    expect(watch.events).toHaveLength(1);
    lossy.broker.failUserReads(false);
    await watch.until(3);
    expect(watch.events.map((event) => event.data!.executionStepChanged.phase)).toEqual([
      'OFFERED',
      'ACCEPTED',
      'COMPLETED',
    ]);
    watch.stop();
  });
});
