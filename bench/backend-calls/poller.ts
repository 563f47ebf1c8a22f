/**
 * The baseline: the reference integration's way of following a Skaha session, one
 * `GET /session/{id}` per session every second until it ends. Only what the benchmark needs: it
 * takes the broker's compute commands for headless steps and reports RUNNING and COMPLETED/FAILED.
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';
import type { Ivoa } from '@srcnet/execution-step-schema';
import { signedHeaders, verify } from '@srcnet/service-kit';
import { SkahaClient } from '../../subgraphs/skaha/src/skaha/index.ts';
import { sessionName } from '../../subgraphs/skaha/src/sessions/launch.ts';

export async function startNaivePoller(options: { skahaUrl: string; secret: string; intervalMs: number }) {
  const api = new SkahaClient({ baseUrl: options.skahaUrl, token: 'dev:dev' });
  const timers = new Set<NodeJS.Timeout>();
  let sequence = 0;
  const report = async (command: Ivoa.WorkerCommand, phase: Ivoa.LifecyclePhase, message?: string) => {
    const callback: Ivoa.ComponentCallback = {
      eventId: randomUUID(),
      stepId: command.stepId,
      componentUuid: command.component.uuid,
      phase,
      sequence: (sequence = Math.max(sequence + 1, Date.now() * 1000)),
      at: new Date().toISOString(),
      ...(message ? { message } : {}),
    };
    const body = JSON.stringify(callback);
    await fetch(command.callbackUrl, {
      method: 'POST',
      headers: signedHeaders(options.secret, body, callback.eventId),
      body,
    });
  };
  const follow = (command: Ivoa.WorkerCommand, id: string) => {
    let last = 'Pending';
    const timer = setInterval(() => {
      void api.getSession(id).then(async (session) => {
        if (session.status === last) return;
        last = session.status;
        if (session.status === 'Running') await report(command, 'RUNNING');
        if (session.status === 'Completed' || session.status === 'Failed') {
          clearInterval(timer);
          timers.delete(timer);
          await report(command, session.status === 'Completed' ? 'COMPLETED' : 'FAILED');
          await api.deleteSession(id);
        }
      });
    }, options.intervalMs);
    timers.add(timer);
  };

  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.post('/commands', async (request, reply) => {
    const body = String(request.body ?? '');
    if (!verify(options.secret, request.headers, body).ok) return reply.code(401).send();
    const command = JSON.parse(body) as Ivoa.WorkerCommand;
    reply.code(202).send();
    if (command.action !== 'prepare') return reply;
    if (command.component.role !== 'compute') {
      await report(command, 'AVAILABLE');
      return reply;
    }
    const docker = command.step.executable as Ivoa.DockerContainer;
    const created = await api.createSession({
      name: sessionName(command.stepId),
      image: docker.image!.locations![0]!,
      type: 'headless',
      cores: 1,
      ram: 1,
    });
    follow(command, created.id);
    return reply;
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    async close() {
      for (const timer of timers) clearInterval(timer);
      await app.close();
    },
  };
}
