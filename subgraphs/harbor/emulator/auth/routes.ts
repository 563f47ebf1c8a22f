/** `/robots`: robot accounts; the secret is shown once, in the create answer. */
import type { FastifyInstance } from 'fastify';
import type { RobotCreate } from '../../src/harbor/types.ts';
import type { HarborCore } from '../core.ts';
import { created, paginate, requirePermission } from '../http/support.ts';
import type { RobotRecord } from './access.ts';

function robotView(robot: RobotRecord): Record<string, unknown> {
  return {
    id: robot.id,
    name: robot.name,
    description: robot.description,
    level: robot.level,
    duration: robot.duration,
    editable: true,
    disable: robot.disable,
    expires_at: robot.expiresAt,
    permissions: robot.permissions,
    creation_time: robot.creationTime.toISOString(),
    update_time: robot.creationTime.toISOString(),
  };
}

export function robotRoutes(app: FastifyInstance, core: HarborCore): void {
  const api = '/api/v2.0';

  app.post(`${api}/robots`, async (request, reply) => {
    requirePermission(core, request, { resource: 'robot', action: 'create' });
    const robot = core.access.createRobot(request.body as RobotCreate);
    return created(reply, `${api}/robots/${robot.id}`).send({
      id: robot.id,
      name: robot.name,
      secret: robot.secret,
      creation_time: robot.creationTime.toISOString(),
      expires_at: robot.expiresAt,
    });
  });

  app.get(`${api}/robots`, async (request, reply) => {
    requirePermission(core, request, { resource: 'robot', action: 'list' });
    return paginate(request, reply, [...core.access.robots.values()]).map(robotView);
  });
}
