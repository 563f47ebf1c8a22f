/**
 * bench/push-latency: the time from a committed step change to its delivery at each of N graphql-ws
 * subscribers of `executionStepChanged` (all of one user's steps), at R changes a second, each
 * event carrying `skahaSession.status` from the second subgraph; beside it, in the same run, a
 * client that polls `executionStep` every 5 s, and its staleness. Then the baseline: the same
 * gateway without its fan-out (the runtime's own upstream subscription per client), with fewer
 * subscribers and for less time, since it falls far behind at full size.
 *
 * The subgraphs are the stand-ins of gateway/test/support (real HTTP subgraphs built like the
 * services, the broker publishing every commit on the pub/sub that feeds the subscription): the
 * commits come at an exact rate, each with a known worker status, so that lateness and staleness
 * of the other subgraph's field can both be checked. Subgraphs, gateway and clients are three
 * processes; loopback only.
 *
 *   npm run bench -- push-latency [--subscribers 1000] [--rate 20] [--seconds 30] [--steps 20]
 *                                 [--baseline-subscribers 100] [--baseline-seconds 10]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import type { Commit } from './server.ts';

const { values } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '30' },
    steps: { type: 'string', default: '20' },
    'baseline-subscribers': { type: 'string', default: '100' },
    'baseline-seconds': { type: 'string', default: '10' },
  },
});
const SUBSCRIBERS = Number(values.subscribers);
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const STEPS = Number(values.steps);
const BASELINE_SUBSCRIBERS = Number(values['baseline-subscribers']);
const BASELINE_SECONDS = Number(values['baseline-seconds']);
const POLL_MS = 5000;
/** An event counts as delivered when it arrives within this time of the last commit. */
const DRAIN_MS = 3000;
const AUTHORIZATION = 'Bearer dev:bench';
const SELECTION = '{ id phase meta { modified } skahaSession { status } }';
const SUBSCRIPTION = `subscription { executionStepChanged ${SELECTION} }`;
const POLL = `query ($id: ID!) { executionStep(id: $id) ${SELECTION} }`;

interface StepView {
  id: string;
  phase: string;
  meta: { modified: string };
  skahaSession: { status: string } | null;
}
type Message = Record<string, unknown> & { type: string };

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));
const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]! : NaN;

/** A child process of server.ts, with its IPC messages waited for by type. */
class Child {
  private readonly inbox: Message[] = [];
  private wake: (() => void) | undefined;
  readonly process: ChildProcess;

  constructor(...args: string[]) {
    this.process = fork(new URL('./server.ts', import.meta.url), args, {
      execArgv: ['--conditions=source', '--import', 'tsx'],
    });
    this.process.on('message', (message: Message) => {
      this.inbox.push(message);
      this.wake?.();
    });
    this.process.once('exit', (code, signal) => {
      this.inbox.push({ type: 'exit', code, signal });
      this.wake?.();
    });
  }

  async reply<T extends Message>(type: string, request?: Message): Promise<T> {
    if (request) this.process.send(request);
    for (;;) {
      const index = this.inbox.findIndex((message) => message.type === type || message.type === 'exit');
      if (index >= 0) {
        const [message] = this.inbox.splice(index, 1);
        if (message!.type === 'exit') throw new Error(`${this.process.spawnargs.at(-1)} exited early`);
        return message as T;
      }
      await new Promise<void>((done) => (this.wake = done));
    }
  }

  /** SIGKILL: the gateway runtime handles SIGTERM by disposing itself but leaves the process running. */
  kill() {
    this.process.kill('SIGKILL');
  }
}

/** An event as a subscriber received it. */
interface Event {
  at: number;
  phase: string;
  status: string;
}

interface SubscriptionFigures {
  gateway: string;
  subscribers: number;
  changes: number;
  expected: number;
  delivered: number;
  share: number;
  /**
   * Of the delivered events, those whose skahaSession.status was the worker's at that commit (an
   * event fetched after a later change of the same step carries that later value).
   */
  freshOtherSubgraphField: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Delivered events whose phase was not that of the change they stood for (out of order). */
  wrongPhase: number;
  /** Events beyond one per change. */
  extra: number;
  errors: number;
  gatewayRssMB: { before: number; after: number };
  /** The gateway process's CPU time from the first commit to the end, per delivered event. */
  gatewayCpuUsPerEvent: number;
  clientEventLoopDelayP99Ms: number;
}

interface PollFigures {
  intervalMs: number;
  steps: number;
  changes: number;
  /** Changes whose own state a poll showed (the rest were overwritten before the next poll). */
  seenExactly: number;
  seenExactlyShare: number;
  /** From commit to the answer of the first poll that reflects it (shows it or a later state). */
  stalenessP50Ms: number;
  stalenessP99Ms: number;
  stalenessMaxMs: number;
}

/**
 * Connects `count` subscribers to `gateway`, has the subgraphs commit RATE changes a second for
 * `seconds`, and matches what arrived against what was committed. With `pollSteps`, a polling
 * client runs beside.
 */
async function run(
  label: string,
  gateway: Child,
  subgraphs: Child,
  count: number,
  seconds: number,
  pollSteps?: string[],
): Promise<{ subscription: SubscriptionFigures; polling?: PollFigures }> {
  const { url, wsUrl } = await gateway.reply<Message & { url: string; wsUrl: string }>('ready');
  // Per subscriber and step, the events in arrival order: the n-th stands for the step's n-th
  // change, since every transition is an event of its own, in order.
  const received = Array.from({ length: count }, () => new Map<string, Event[]>());
  const initial = new Uint32Array(count);
  let measuring = false;
  let arrived = 0;
  let errors = 0;
  const clients: Client[] = [];
  const subscribe = (index: number) => {
    const client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: AUTHORIZATION },
      lazy: false,
      retryAttempts: 0,
    });
    clients.push(client);
    client.subscribe<{ executionStepChanged: StepView }>(
      { query: SUBSCRIPTION },
      {
        next: ({ data }) => {
          const now = Date.now();
          const step = data?.executionStepChanged;
          if (!step) return void (errors += 1);
          // The first STEPS events are the current state every subscriber gets first.
          if (initial[index]! < STEPS) return void (initial[index]! += 1);
          if (!measuring) return;
          let events = received[index]!.get(step.id);
          if (!events) received[index]!.set(step.id, (events = []));
          events.push({ at: now, phase: step.phase, status: step.skahaSession?.status ?? '' });
          arrived += 1;
        },
        error: () => void (errors += 1),
        complete: () => {},
      },
    );
  };
  // In batches, as clients arrive in practice, rather than 1,000 handshakes in one tick.
  for (let index = 0; index < count; index += 1) {
    subscribe(index);
    if (index % 50 === 49) await sleep(20);
  }
  const deadline = Date.now() + 120_000;
  while (initial.some((events) => events < STEPS)) {
    if (errors) throw new Error(`${label}: ${errors} subscriptions failed while connecting`);
    if (Date.now() > deadline) throw new Error(`${label}: subscribers did not all get the current state`);
    await sleep(100);
  }
  await sleep(1000);
  const before = await gateway.reply<Message & { rss: number; cpuMs: number }>('memory', { type: 'memory' });

  const polls: { id: string; modified: number; at: number }[] = [];
  /** When the last poll round that has finished had started. */
  let lastRoundStarted = 0;
  let polling: NodeJS.Timeout | undefined;
  const poll = async () => {
    const started = Date.now();
    await Promise.all(
      (pollSteps ?? []).map(async (id) => {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: AUTHORIZATION },
          body: JSON.stringify({ query: POLL, variables: { id } }),
        });
        const { data } = (await response.json()) as { data?: { executionStep: StepView | null } };
        const step = data?.executionStep;
        if (!step) throw new Error(`poll of step ${id} failed`);
        polls.push({ id, modified: Date.parse(step.meta.modified), at: Date.now() });
      }),
    );
    lastRoundStarted = Math.max(lastRoundStarted, started);
  };
  if (pollSteps) {
    await poll();
    polling = setInterval(() => void poll().catch(() => (errors += 1)), POLL_MS);
  }

  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  // Anything before the first commit is not a change (the gateway's change feed, connecting,
  // may repeat steps' current state).
  measuring = true;
  const { commits } = await subgraphs.reply<Message & { commits: Commit[] }>('committed', {
    type: 'commit',
    rate: RATE,
    seconds,
  });
  const expected = commits.length * count;
  const drainUntil = Date.now() + DRAIN_MS;
  while (Date.now() < drainUntil && arrived < expected) await sleep(50);
  measuring = false;
  loop.disable();
  const after = await gateway.reply<Message & { rss: number; cpuMs: number }>('memory', { type: 'memory' });
  if (polling) {
    // A whole poll round after the last commit, so that every commit has a poll that reflects it.
    const last = Date.parse(commits.at(-1)!.modified);
    while (lastRoundStarted <= last) await sleep(100);
    clearInterval(polling);
  }
  await Promise.all(clients.map((client) => client.dispose()));

  const latencies: number[] = [];
  let fresh = 0;
  let wrongPhase = 0;
  const byStep = new Map<string, Commit[]>();
  for (const commit of commits) byStep.set(commit.id, [...(byStep.get(commit.id) ?? []), commit]);
  for (const events of received)
    for (const [id, changes] of byStep) {
      const got = events.get(id) ?? [];
      changes.forEach((commit, n) => {
        const event = got[n];
        if (!event) return;
        latencies.push(event.at - Date.parse(commit.modified));
        if (event.status === commit.status) fresh += 1;
        if (event.phase !== commit.phase) wrongPhase += 1;
      });
    }
  latencies.sort((a, b) => a - b);
  const mb = (bytes: number) => Math.round(bytes / 1e6);
  const subscription: SubscriptionFigures = {
    gateway: label,
    subscribers: count,
    changes: commits.length,
    expected,
    delivered: latencies.length,
    share: Number((latencies.length / expected).toFixed(4)),
    freshOtherSubgraphField: Number((fresh / Math.max(1, latencies.length)).toFixed(4)),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? NaN,
    wrongPhase,
    extra: arrived - latencies.length,
    errors,
    gatewayRssMB: { before: mb(before.rss), after: mb(after.rss) },
    gatewayCpuUsPerEvent: Math.round(((after.cpuMs - before.cpuMs) * 1000) / Math.max(1, latencies.length)),
    clientEventLoopDelayP99Ms: Number((loop.percentile(99) / 1e6).toFixed(1)),
  };
  if (!pollSteps) return { subscription };

  const staleness: number[] = [];
  let exactly = 0;
  for (const commit of commits) {
    const at = Date.parse(commit.modified);
    const first = polls.find((p) => p.id === commit.id && p.modified >= at);
    if (!first) continue;
    staleness.push(first.at - at);
    if (first.modified === at) exactly += 1;
  }
  staleness.sort((a, b) => a - b);
  return {
    subscription,
    polling: {
      intervalMs: POLL_MS,
      steps: pollSteps.length,
      changes: commits.length,
      seenExactly: exactly,
      seenExactlyShare: Number((exactly / commits.length).toFixed(4)),
      stalenessP50Ms: percentile(staleness, 0.5),
      stalenessP99Ms: percentile(staleness, 0.99),
      stalenessMaxMs: staleness.at(-1) ?? NaN,
    },
  };
}

const children: Child[] = [];
const start = (...args: string[]) => {
  const child = new Child(...args);
  children.push(child);
  return child;
};
try {
  const subgraphs = start('subgraphs', String(STEPS));
  const { brokerUrl, skahaUrl, stepIds } = await subgraphs.reply<
    Message & { brokerUrl: string; skahaUrl: string; stepIds: string[] }
  >('ready');

  const ours = start('gateway', brokerUrl, skahaUrl);
  const main = await run('this gateway (shared fan-out)', ours, subgraphs, SUBSCRIBERS, SECONDS, stepIds);
  ours.kill();
  let baseline: SubscriptionFigures | undefined;
  if (BASELINE_SUBSCRIBERS > 0 && BASELINE_SECONDS > 0) {
    const stock = start('gateway', brokerUrl, skahaUrl, 'stock');
    baseline = (
      await run('stock runtime (baseline)', stock, subgraphs, BASELINE_SUBSCRIBERS, BASELINE_SECONDS)
    ).subscription;
    stock.kill();
  }

  const polling = main.polling!;
  const pct = (share: number) => `${(share * 100).toFixed(2)} %`;
  console.log(
    `push-latency: ${RATE} changes/s over ${STEPS} steps of one user; each event selects ${SELECTION}, ` +
      `skahaSession from the second subgraph; delivered = arrived within ${DRAIN_MS / 1000} s of the last commit\n`,
  );
  const rows = [
    ['client', 'clients', 'changes', 'delivered', 'share', 'fresh skaha field', 'p50 ms', 'p99 ms', 'max ms'],
    ...[main.subscription, ...(baseline ? [baseline] : [])].map((s) =>
      [
        `graphql-ws, ${s.gateway}`,
        s.subscribers,
        s.changes,
        `${s.delivered} / ${s.expected}`,
        pct(s.share),
        pct(s.freshOtherSubgraphField),
        s.p50Ms,
        s.p99Ms,
        s.maxMs,
      ].map(String),
    ),
    [
      `poll executionStep every ${POLL_MS / 1000} s (staleness)`,
      `1 (${polling.steps} steps)`,
      polling.changes,
      `${polling.seenExactly} seen exactly`,
      pct(polling.seenExactlyShare),
      '',
      polling.stalenessP50Ms,
      polling.stalenessP99Ms,
      polling.stalenessMaxMs,
    ].map(String),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '));
  for (const s of [main.subscription, ...(baseline ? [baseline] : [])])
    console.log(
      `${s.gateway}: gateway RSS ${s.gatewayRssMB.before} → ${s.gatewayRssMB.after} MB, ` +
        `gateway CPU ${s.gatewayCpuUsPerEvent} µs per delivered event, ` +
        `${s.wrongPhase} out of order, ${s.extra} extra, ${s.errors} errors, client event-loop delay p99 ${s.clientEventLoopDelayP99Ms} ms`,
    );
  const met = main.subscription.share === 1 && main.subscription.p99Ms < 50;
  console.log(
    `target (every event delivered, p99 < 50 ms) at ${SUBSCRIBERS} subscribers: ${met ? 'met' : 'NOT met'}`,
  );
  console.log(
    JSON.stringify({
      benchmark: 'push-latency',
      changesPerSecond: RATE,
      seconds: SECONDS,
      steps: STEPS,
      subscription: main.subscription,
      polling,
      baseline: baseline ?? null,
    }),
  );
} finally {
  for (const child of children) child.kill();
}
