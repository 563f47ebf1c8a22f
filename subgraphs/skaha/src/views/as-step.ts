/**
 * A Skaha session shown as an ExecutionStep, so that one UI component can show a step whether it
 * came from the broker or straight from Skaha. Only what the session says is filled in.
 */
import { createHash } from 'node:crypto';
import { KINDS, type Ivoa } from '@srcnet/execution-step-schema';
import { stepComputeOf } from '../resources/mapping.ts';
import type { ResourceContext, Session, SessionStatus } from '../skaha/index.ts';

/** A UUID (version 5 layout) from the Skaha session id: the same session always gets the same id. */
export function stepIdOfSession(sessionId: string): string {
  const hash = createHash('sha1').update(`skaha-session:${sessionId}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The step phase a session status stands for; interactive sessions are AVAILABLE while running. */
export function phaseOfStatus(status: SessionStatus, type: string): Ivoa.SessionPhase {
  switch (status) {
    case 'Pending':
      return 'PREPARING';
    case 'Running':
      return type === 'headless' ? 'RUNNING' : 'AVAILABLE';
    case 'Completed':
      return 'COMPLETED';
    case 'Failed':
      return 'FAILED';
    case 'Terminating':
      return 'RELEASING';
    default:
      return 'INITIAL';
  }
}

const roundUp = (value: number | undefined) => (value === undefined ? undefined : Math.ceil(value));

export function sessionAsStep(
  session: Session,
  id: string,
  context: ResourceContext,
): Ivoa.ScheduledExecutionSession {
  const compute = stepComputeOf(session, context);
  const executable: Ivoa.Executable =
    session.type === 'headless'
      ? { kind: KINDS.DockerContainer as never, image: { locations: [session.image] } }
      : {
          kind: KINDS.JupyterNotebook as never,
          ...(session.connectURL ? { location: session.connectURL } : {}),
        };
  const range = (r: { min?: number; max?: number } | undefined) => ({
    ...(r?.min === undefined ? {} : { min: roundUp(r.min) }),
    ...(r?.max === undefined ? {} : { max: roundUp(r.max) }),
  });
  const step: Ivoa.ScheduledExecutionSession = {
    kind: KINDS.ScheduledExecutionSession as never,
    meta: {
      uuid: id,
      name: session.name,
      owner: session.userid,
      ...(session.startTime ? { created: session.startTime } : {}),
    },
    phase: phaseOfStatus(session.status, session.type),
    executable,
    compute: {
      kind: KINDS.SimpleComputeResource as never,
      cores: range(compute.cores),
      memory: range(compute.memory),
    } as Ivoa.ComputeResource,
  };
  if (session.connectURL && session.status === 'Running')
    step.connectors = [
      { kind: 'urn:jupyter-notebook', status: 'AVAILABLE', protocol: 'HTTPS', location: session.connectURL },
    ];
  if (session.startTime && session.expiryTime)
    step.schedule = { available: { start: `${session.startTime}/${session.expiryTime}` } };
  return step;
}
