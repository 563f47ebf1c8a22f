/**
 * bench/gateway-throughput: the same supergraph (stand-in broker and worker, real HTTP subgraphs)
 * served by this gateway and by @apollo/gateway on @apollo/server, queries only, loaded in turn by
 * autocannon with one query of 50 steps each needing a field of the other subgraph. Prints
 * requests per second, p50, p95 and p99 for both, and the ratio, in two cases:
 * - one caller on every connection: identical concurrent subgraph calls can be shared (the Hive
 *   runtime does so by default, Apollo Gateway does not);
 * - a caller per connection: each signed subgraph call is different, so nothing is shared, as
 *   with a portal's many users.
 * The two gateways alternate within each round, so that whatever else the machine does falls on
 * both. Also each gateway's CPU time per request and the other subgraph's calls per request. One
 * process per server; loopback only.
 *
 *   npm run bench -- gateway-throughput [--seconds 10] [--rounds 2] [--connections 20]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    connections: { type: 'string', default: '20' },
  },
});
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const CONNECTIONS = Number(values.connections);
/**
 * 50 steps from the broker, each with a field from the worker: one cross-subgraph entity fetch.
 * The owner is there to check, under load, that every caller gets its own steps.
 */
const QUERY =
  '{ executionSteps(first: 50) { edges { node { id phase meta { owner } skahaSession { status } } } } }';
const GATEWAYS = { ours: 'this gateway', apollo: '@apollo/gateway' } as const;
type Gateway = keyof typeof GATEWAYS;
/** Who calls on each connection (the subgraphs hold 60 steps of each bench-N). */
const CASES = {
  oneCaller: { title: 'one caller', user: () => 'bench-0' },
  callerPerConnection: {
    title: 'a caller per connection',
    user: (connection: number) => `bench-${connection}`,
  },
} as const;
type Case = keyof typeof CASES;

interface Child {
  process: ChildProcess;
  ready: Record<string, string>;
  ask(type: string): Promise<Record<string, number>>;
}
const children: Child[] = [];

function start(...args: string[]): Promise<Child> {
  const child = fork(new URL('./server.ts', import.meta.url), args, {
    execArgv: ['--conditions=source', '--import', 'tsx'],
    env: { ...process.env, APOLLO_TELEMETRY_DISABLED: 'true', NODE_ENV: 'production' },
  });
  const ask = (type: string) =>
    new Promise<Record<string, number>>((answer) => {
      child.once('message', answer);
      child.send({ type });
    });
  return new Promise((resolve, reject) => {
    child.once('message', (ready: Record<string, string>) => {
      child.removeAllListeners('exit');
      const started = { process: child, ready, ask };
      children.push(started);
      resolve(started);
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code} before it was ready`)));
  });
}

interface Load {
  requests: number;
  seconds: number;
  failed: number;
  /** Answers that held another caller's steps. */
  wrong: number;
  /** Every response's time, ms: autocannon's own summary has no p95. */
  times: number[];
  /** CPU time of the gateway process during the load. */
  cpuMs: number;
  skahaCalls: number;
}

async function load(server: Child, subgraphs: Child, which: Case, seconds: number): Promise<Load> {
  const times: number[] = [];
  const before = { gateway: await server.ask('usage'), subgraphs: await subgraphs.ask('usage') };
  let connection = 0;
  let wrong = 0;
  const result = await new Promise<autocannon.Result>((done, failed) => {
    const instance = autocannon(
      {
        url: server.ready.url!,
        method: 'POST',
        connections: CONNECTIONS,
        duration: seconds,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: QUERY }),
        setupClient: (client) => {
          const user = CASES[which].user(connection++);
          client.setHeaders({ 'content-type': 'application/json', authorization: `Bearer dev:${user}` });
          // Checked per chunk: an owner split across two chunks is missed, never misread.
          let foreign = false;
          client.on('body', (chunk: Buffer) => {
            for (const [, owner] of chunk.toString().matchAll(/"owner":"([^"]+)"/g))
              foreign ||= owner !== user;
          });
          client.on('response', () => {
            if (foreign) wrong += 1;
            foreign = false;
          });
        },
      },
      (error, result) => (error ? failed(error) : done(result)),
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => times.push(responseTime));
  });
  const after = { gateway: await server.ask('usage'), subgraphs: await subgraphs.ask('usage') };
  return {
    requests: result.requests.total,
    seconds: result.duration || seconds,
    failed: result.non2xx + result.errors + result.timeouts,
    wrong,
    times,
    cpuMs: after.gateway.cpuMs! - before.gateway.cpuMs!,
    skahaCalls: after.subgraphs.skahaRequests! - before.subgraphs.skahaRequests!,
  };
}

interface GraphQLAnswer {
  data?: {
    executionSteps?: { edges: { node: { id: string; skahaSession: { status: string } | null } }[] };
  };
}

async function answer(url: string, user: string) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer dev:${user}` },
    body: JSON.stringify({ query: QUERY }),
  });
  return (await response.json()) as GraphQLAnswer;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? NaN;

/** Figures over all rounds of one gateway in one case; percentiles of all responses together. */
function summary(loads: Load[]) {
  const times = loads.flatMap((run) => run.times).sort((a, b) => a - b);
  const requests = loads.reduce((sum, run) => sum + run.requests, 0);
  const seconds = loads.reduce((sum, run) => sum + run.seconds, 0);
  const round = (value: number) => Number(value.toFixed(2));
  const ms = (value: number) => Number(value.toFixed(1));
  return {
    rps: Math.round(requests / seconds),
    p50Ms: ms(percentile(times, 0.5)),
    p95Ms: ms(percentile(times, 0.95)),
    p99Ms: ms(percentile(times, 0.99)),
    failed: loads.reduce((sum, run) => sum + run.failed, 0),
    wrongCaller: loads.reduce((sum, run) => sum + run.wrong, 0),
    gatewayCpuMsPerRequest: round(loads.reduce((sum, run) => sum + run.cpuMs, 0) / requests),
    skahaCallsPerRequest: round(loads.reduce((sum, run) => sum + run.skahaCalls, 0) / requests),
  };
}

try {
  const subgraphs = await start('subgraphs', String(CONNECTIONS));
  const { brokerUrl, skahaUrl } = subgraphs.ready;
  const servers: Record<Gateway, Child> = {
    ours: await start('ours', brokerUrl!, skahaUrl!),
    apollo: await start('apollo', brokerUrl!, skahaUrl!),
  };
  // Both must give the same full answer, or the comparison means nothing.
  for (const user of ['bench-0', `bench-${CONNECTIONS - 1}`]) {
    const expected = JSON.stringify(await answer(servers.ours.ready.url!, user));
    const edges = (JSON.parse(expected) as GraphQLAnswer).data?.executionSteps?.edges ?? [];
    if (edges.length !== 50 || !edges.every((edge) => edge.node.skahaSession?.status.startsWith('status-')))
      throw new Error(`this gateway answered wrongly: ${expected.slice(0, 300)}`);
    if (JSON.stringify(await answer(servers.apollo.ready.url!, user)) !== expected)
      throw new Error('@apollo/gateway answered differently from this gateway');
  }

  const gateways = Object.keys(GATEWAYS) as Gateway[];
  const cases = Object.keys(CASES) as Case[];
  for (const gateway of gateways) await load(servers[gateway], subgraphs, 'callerPerConnection', 3);
  const loads = new Map<string, Load[]>();
  for (let round = 1; round <= ROUNDS; round += 1)
    for (const which of cases)
      for (const gateway of gateways) {
        const key = `${which} ${gateway}`;
        loads.set(key, [...(loads.get(key) ?? []), await load(servers[gateway], subgraphs, which, SECONDS)]);
      }
  const rssMB = Object.fromEntries(
    await Promise.all(
      gateways.map(async (gateway) => [
        gateway,
        Math.round((await servers[gateway].ask('usage')).rss! / 1e6),
      ]),
    ),
  ) as Record<Gateway, number>;

  const results = Object.fromEntries(
    cases.map((which) => {
      const ours = summary(loads.get(`${which} ours`)!);
      const apollo = summary(loads.get(`${which} apollo`)!);
      return [which, { ours, apollo, ratio: Number((ours.rps / apollo.rps).toFixed(2)) }];
    }),
  ) as Record<Case, { ours: ReturnType<typeof summary>; apollo: ReturnType<typeof summary>; ratio: number }>;

  console.log(
    `gateway-throughput: ${QUERY}\n${CONNECTIONS} connections; ${ROUNDS} rounds of ${SECONDS} s per case and gateway, alternating\n`,
  );
  const rows = [
    [
      'callers',
      'gateway',
      'req/s',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'failed',
      'gateway CPU ms/req',
      'skaha calls/req',
    ],
    ...cases.flatMap((which) =>
      gateways.map((gateway) => {
        const run = results[which][gateway];
        return [
          CASES[which].title,
          GATEWAYS[gateway],
          run.rps,
          run.p50Ms,
          run.p95Ms,
          run.p99Ms,
          run.failed,
          run.wrongCaller,
          run.gatewayCpuMsPerRequest,
          run.skahaCallsPerRequest,
        ].map(String);
      }),
    ),
  ];
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  for (const row of rows) console.log(row.map((cell, column) => cell.padEnd(widths[column]!)).join('  '));
  console.log('');
  for (const which of cases) {
    const { ours, apollo, ratio } = results[which];
    const met = ratio >= 1.5 && ours.p99Ms <= apollo.p99Ms && !ours.wrongCaller && !ours.failed;
    console.log(
      `${CASES[which].title}: this gateway / @apollo/gateway requests per second ${ratio}×, p99 ${ours.p99Ms} vs ${apollo.p99Ms} ms: target (≥ 1.5×, p99 no worse, every answer right) ${met ? 'met' : 'NOT met'}`,
    );
  }
  console.log(`RSS after the runs: this gateway ${rssMB.ours} MB, @apollo/gateway ${rssMB.apollo} MB`);
  console.log(
    JSON.stringify({
      benchmark: 'gateway-throughput',
      query: QUERY,
      connections: CONNECTIONS,
      rounds: ROUNDS,
      secondsPerRun: SECONDS,
      ...results,
      rssMB,
    }),
  );
} finally {
  // SIGKILL: the gateway runtime handles SIGTERM by disposing itself but leaves its process running.
  for (const child of children) child.process.kill('SIGKILL');
}
