/**
 * One process of push-latency, by its first argument, driven over IPC by main.ts:
 * - `subgraphs STEPS`: the stand-in broker (STEPS steps of user bench) and worker. On
 *   {type: 'commit', rate, seconds} it commits `rate` changes a second: each moves one step (in
 *   turn) to its next phase and, just before, sets that step's skahaSession.status in the worker,
 *   so that an event can be checked to carry the worker's value of that moment. It answers
 *   {type: 'committed', commits} with every change's step, modification time and status.
 * - `gateway BROKER_URL SKAHA_URL [stock]`: this project's gateway; with `stock`, without its
 *   fan-out (the runtime opens one upstream subscription per client). Answers {type: 'memory'}
 *   with its memory and CPU time so far.
 */
import { createPubSub } from '@srcnet/service-kit';
import { composeSupergraph } from '../../gateway/src/compose/compose.ts';
import { loadConfig } from '../../gateway/src/config.ts';
import { startGateway } from '../../gateway/src/server.ts';
import {
  BROKER_SDL,
  SKAHA_SDL,
  startStandInBroker,
  startStandInWorker,
} from '../../gateway/test/support/standins.ts';

/** A committed change, as main.ts matches it against the events. */
export interface Commit {
  id: string;
  phase: string;
  modified: string;
  status: string;
}

/** Phases a step cycles through; all "active", so every step stays in the subscribers' view. */
const PHASES = ['ACCEPTED', 'WAITING', 'PREPARING', 'AVAILABLE', 'RUNNING', 'RELEASING'];

const [role, ...args] = process.argv.slice(2);
const send = (message: Record<string, unknown>) => process.send!(message);

if (role === 'subgraphs') {
  const broker = await startStandInBroker({ pubsub: createPubSub() });
  const worker = await startStandInWorker({});
  const steps = Array.from({ length: Number(args[0]) }, () => broker.create('bench'));
  for (const step of steps) worker.status.set(step.id, 'initial');
  let made = 0;
  process.on('message', (message: { type: string; rate: number; seconds: number }) => {
    if (message.type !== 'commit') return;
    const commits: Commit[] = [];
    const total = Math.round(message.rate * message.seconds);
    const interval = 1000 / message.rate;
    const startedAt = performance.now();
    const tick = () => {
      const step = steps[made % steps.length]!;
      const status = `status-${made}`;
      worker.status.set(step.id, status);
      broker.move(step.id, PHASES[(PHASES.indexOf(step.phase) + 1) % PHASES.length]!);
      commits.push({ id: step.id, phase: step.phase, modified: step.meta.modified, status });
      made += 1;
      // Timed from the start, not from the last tick, so that the rate holds whatever a tick costs.
      if (commits.length < total)
        setTimeout(tick, Math.max(0, startedAt + commits.length * interval - performance.now()));
      else send({ type: 'committed', commits });
    };
    tick();
  });
  send({
    type: 'ready',
    brokerUrl: broker.url,
    skahaUrl: worker.url,
    stepIds: steps.map((step) => step.id),
  });
} else if (role === 'gateway') {
  const [brokerUrl, skahaUrl, mode] = args;
  const gateway = await startGateway(
    {
      ...loadConfig({ GATEWAY_PORT: '0', RATE_LIMIT_PER_MINUTE: '0' }),
      supergraph: composeSupergraph([
        { name: 'broker', url: brokerUrl!, sdl: BROKER_SDL },
        { name: 'skaha', url: skahaUrl!, sdl: SKAHA_SDL },
      ]),
      subgraphUrls: { broker: brokerUrl!, skaha: skahaUrl! },
    },
    { logging: false, fanout: mode !== 'stock' },
  );
  process.on('message', (message: { type: string }) => {
    if (message.type !== 'memory') return;
    const { rss, heapUsed } = process.memoryUsage();
    const { user, system } = process.cpuUsage();
    send({ type: 'memory', rss, heapUsed, cpuMs: (user + system) / 1000 });
  });
  send({ type: 'ready', url: gateway.url, wsUrl: gateway.wsUrl });
} else {
  throw new Error(`unknown role ${role}`);
}
