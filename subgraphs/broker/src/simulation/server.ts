import Fastify from 'fastify';
import { parseDocument, validateWorkerCommand } from '@srcnet/execution-step-schema';
import { signedHeaders, verify } from '@srcnet/service-kit';
import { simulatedPlatform, type SimulatedPlatform, type SimulationOptions } from './platform.ts';

/**
 * The simulated platform as a worker process of its own: it takes signed commands at
 * `POST /commands` and sends signed callbacks to each command's callbackUrl, exactly as the real
 * workers do, and answers the broker's image checks (`POST /estimates`) as the Harbor worker does.
 * The crash tests run it beside a broker they kill.
 */
export async function startSimulatedWorker(options: SimulationOptions & { secret: string; port?: number }) {
  const platform: SimulatedPlatform = simulatedPlatform(options, async (callback, command) => {
    const body = JSON.stringify(callback);
    const response = await fetch(command.callbackUrl, {
      method: 'POST',
      headers: signedHeaders(options.secret, body, callback.eventId),
      body,
      signal: AbortSignal.timeout(5000),
    });
    if (response.status >= 500 || response.status === 401)
      throw new Error(`callback answered ${response.status}`);
  });
  const app = Fastify();
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
  app.post('/commands', async (request, reply) => {
    const body = String(request.body ?? '');
    const check = verify(options.secret, request.headers, body);
    if (!check.ok) return reply.code(401).send({ error: check.reason });
    const command = validateWorkerCommand(parseDocument(body, 'json'));
    if (!command.ok) return reply.code(400).send({ issues: command.issues });
    platform.handle(command.value);
    return reply.code(202).send({ accepted: command.value.commandId });
  });
  // As the Harbor worker answers offers (docs/harbor.md): the simulated platform copies no
  // image, so every image is already where it runs.
  app.post('/estimates', async (request, reply) => {
    const body = String(request.body ?? '');
    const check = verify(options.secret, request.headers, body);
    if (!check.ok) return reply.code(401).send({ error: check.reason });
    const image = (JSON.parse(body) as { image?: { locations?: string[]; digest?: string } }).image;
    const reference = image?.locations?.[0];
    if (!reference) return reply.code(400).send({ error: 'image.locations must be a non-empty array' });
    return {
      reference,
      digest: image.digest ?? null,
      sizeBytes: null,
      availableLocally: true,
      localReference: reference,
      estimatedCopySeconds: 0,
    };
  });
  const url = await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  return {
    url,
    platform,
    async close() {
      platform.stop();
      await app.close();
    },
  };
}
