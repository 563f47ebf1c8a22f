import { randomUUID } from 'node:crypto';
import { schemaNameForKind, type Ivoa } from '@srcnet/execution-step-schema';

/**
 * A stand-in for the workers until they are wired in, and for benchmarks: it takes the same
 * commands and answers with the same callbacks as a real worker, after configurable delays and
 * with a configurable failure rate. A command is done at most once (by commandId), and a callback
 * that cannot be delivered is retried until it is.
 */

export interface SimulationOptions {
  /** Milliseconds each role takes to prepare. */
  prepareMs: Partial<Record<Ivoa.ComponentRole, number>>;
  /** How long a container (a headless session) runs before it exits. */
  runMs: number;
  releaseMs: number;
  /** Share of prepare commands that fail, 0..1. */
  failureRate: number;
  random?: () => number;
}

const DEDUPE_WINDOW = 100_000;

export type Deliver = (callback: Ivoa.ComponentCallback, command: Ivoa.WorkerCommand) => Promise<void>;

export interface SimulatedPlatform {
  handle(command: Ivoa.WorkerCommand): void;
  /** Commands received, and how many took effect (a repeat takes none). */
  stats(): { received: number; effective: number; pendingCallbacks: number };
  stop(): void;
}

export function simulatedPlatform(options: SimulationOptions, deliver: Deliver): SimulatedPlatform {
  const random = options.random ?? Math.random;
  const done = new Set<string>();
  let lastSequence = 0;
  /** Per component, the delivery of its previous callback: callbacks go out in order, as a real worker's do. */
  const lanes = new Map<string, Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();
  let received = 0;
  let effective = 0;
  let pending = 0;
  let stopped = false;

  const later = (ms: number, fn: () => void) => {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  };

  const send = (
    command: Ivoa.WorkerCommand,
    phase: Ivoa.LifecyclePhase,
    extra: Partial<Ivoa.ComponentCallback> = {},
  ) => {
    const uuid = command.component.uuid;
    // Time-based, so that sequences stay increasing when several broker instances (each with its
    // own simulation) report on the same component: prepare on one, release on another.
    const sequence = (lastSequence = Math.max(lastSequence + 1, Date.now() * 1000));
    const callback: Ivoa.ComponentCallback = {
      eventId: randomUUID(),
      stepId: command.stepId,
      componentUuid: uuid,
      phase,
      sequence,
      at: new Date().toISOString(),
      ...extra,
    };
    pending++;
    const delivered = new Promise<void>((resolve) => {
      const attempt = (n: number) => {
        if (stopped) return resolve();
        deliver(callback, command).then(
          () => {
            pending--;
            resolve();
          },
          () => later(Math.min(1000, 50 * 2 ** n), () => attempt(n + 1)),
        );
      };
      const previous = lanes.get(uuid) ?? Promise.resolve();
      void previous.then(() => attempt(0));
    });
    lanes.set(uuid, delivered);
    void delivered.then(() => {
      if (lanes.get(uuid) === delivered) lanes.delete(uuid);
    });
  };

  const isContainer = (command: Ivoa.WorkerCommand) =>
    command.component.role === 'compute' &&
    schemaNameForKind(command.step.executable?.kind ?? '') === 'DockerContainer';

  return {
    handle(command) {
      received++;
      if (done.has(command.commandId)) return;
      done.add(command.commandId);
      effective++;
      // A window of recent commands is enough to catch redeliveries, and keeps memory flat.
      if (done.size > DEDUPE_WINDOW) done.delete(done.values().next().value!);
      switch (command.action) {
        case 'prepare': {
          const ms = options.prepareMs[command.component.role] ?? 0;
          later(ms, () => {
            if (random() < options.failureRate) {
              send(command, 'FAILED', {
                message: `simulated failure preparing the ${command.component.role}`,
              });
              return;
            }
            if (!isContainer(command)) {
              send(command, 'AVAILABLE');
              return;
            }
            send(command, 'RUNNING');
            later(options.runMs, () =>
              send(command, 'COMPLETED', { message: 'the container exited with code 0' }),
            );
          });
          return;
        }
        case 'release':
          later(options.releaseMs, () => send(command, 'COMPLETED'));
          return;
        case 'cancel':
          later(0, () => send(command, 'CANCELLED'));
          return;
      }
    },
    stats: () => ({ received, effective, pendingCallbacks: pending }),
    stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
    },
  };
}
