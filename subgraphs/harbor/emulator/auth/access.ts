/**
 * Who is calling and what they may do: users and robot accounts with HTTP Basic, registry
 * bearer tokens for `/v2`, and a small version of Harbor's RBAC (system admins may do
 * everything; robots what their permissions list; anyone may read public projects).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { RobotCreate, RobotPermission } from '../../src/harbor/types.ts';
import type { ProjectRecord } from '../artifacts/store.ts';
import { HarborFailure } from '../artifacts/store.ts';

export interface RobotRecord {
  id: number;
  /** With the prefix: `robot$name` or `robot$project+name`. */
  name: string;
  secret: string;
  description: string;
  level: 'project' | 'system';
  disable: boolean;
  duration: number;
  /** Unix seconds; -1 never. */
  expiresAt: number;
  permissions: RobotPermission[];
  creationTime: Date;
}

export type Principal =
  | { kind: 'user'; name: string; admin: boolean }
  | { kind: 'robot'; name: string; robot: RobotRecord }
  | { kind: 'anonymous'; name: '' };

export const ANONYMOUS: Principal = { kind: 'anonymous', name: '' };

/** A permission question: a system resource, or a resource inside one project. */
export type Permission = { resource: string; action: string } & (
  { project?: undefined } | { project: ProjectRecord }
);

export interface UserSpec {
  password: string;
  admin?: boolean;
}

interface GrantedToken {
  principal: Principal;
  access: { type: string; name: string; actions: string[] }[];
  expiresAt: number;
}

/** What anyone may do in a public project. */
const PUBLIC_READS = new Set([
  'project:read',
  'repository:pull',
  'repository:list',
  'repository:read',
  'artifact:read',
  'artifact:list',
  'tag:list',
]);

const SECRET_RULE = /^(?=.*[a-z])(?=.*[A-Z])(?=.*\d).{8,128}$/;
const ROBOT_NAME = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class AccessControl {
  readonly robots = new Map<number, RobotRecord>();
  private readonly tokens = new Map<string, GrantedToken>();
  private nextRobotId = 1;

  constructor(
    private readonly users: Record<string, UserSpec>,
    readonly robotPrefix = 'robot$',
    private readonly tokenLifetimeSeconds = 1800,
  ) {}

  /**
   * The caller behind an Authorization header: anonymous without one, undefined when the
   * credentials are wrong (Harbor then answers 401 rather than treating the caller as anonymous).
   */
  authenticate(header: string | undefined, allowBearer: boolean): Principal | undefined {
    if (!header) return ANONYMOUS;
    const [scheme, value = ''] = header.trim().split(/\s+/, 2);
    if (scheme?.toLowerCase() === 'basic') {
      const decoded = Buffer.from(value, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) return undefined;
      return this.login(decoded.slice(0, colon), decoded.slice(colon + 1));
    }
    if (scheme?.toLowerCase() === 'bearer' && allowBearer) {
      const token = this.tokens.get(value);
      return token && token.expiresAt > Date.now() ? token.principal : undefined;
    }
    return undefined;
  }

  private login(name: string, password: string): Principal | undefined {
    if (name.startsWith(this.robotPrefix)) {
      for (const robot of this.robots.values()) {
        if (robot.name !== name || !sameText(robot.secret, password)) continue;
        if (robot.disable || (robot.expiresAt !== -1 && robot.expiresAt * 1000 < Date.now()))
          return undefined;
        return { kind: 'robot', name, robot };
      }
      return undefined;
    }
    const user = Object.hasOwn(this.users, name) ? this.users[name] : undefined;
    return user && sameText(user.password, password)
      ? { kind: 'user', name, admin: user.admin ?? false }
      : undefined;
  }

  can(principal: Principal, permission: Permission): boolean {
    if (principal.kind === 'user' && principal.admin) return true;
    const project = permission.project;
    if (project?.public && PUBLIC_READS.has(`${permission.resource}:${permission.action}`)) return true;
    // Harbor lets every signed-in user create projects unless configured otherwise.
    if (
      principal.kind === 'user' &&
      !project &&
      permission.resource === 'project' &&
      permission.action === 'create'
    )
      return true;
    if (principal.kind !== 'robot') return false;
    let allowed = false;
    for (const granted of principal.robot.permissions) {
      const applies = project
        ? granted.kind === 'project' && (granted.namespace === project.name || granted.namespace === '*')
        : granted.kind === 'system';
      if (!applies) continue;
      for (const access of granted.access) {
        if (access.resource !== permission.resource || access.action !== permission.action) continue;
        if (access.effect === 'deny') return false;
        allowed = true;
      }
    }
    return allowed;
  }

  createRobot(body: RobotCreate): RobotRecord {
    if (typeof body?.name !== 'string' || !ROBOT_NAME.test(body.name))
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        'name must be lower-case letters and digits joined by . _ or -',
      );
    if (body.level !== 'project' && body.level !== 'system')
      throw new HarborFailure(400, 'BAD_REQUEST', 'level must be "project" or "system"');
    if (!Number.isInteger(body.duration) || (body.duration < 1 && body.duration !== -1))
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        'duration must be a positive number of days or -1 (never expires)',
      );
    if (!Array.isArray(body.permissions) || body.permissions.length === 0)
      throw new HarborFailure(400, 'BAD_REQUEST', 'permissions must not be empty');
    for (const [i, permission] of body.permissions.entries()) {
      if (permission.kind !== 'project' && permission.kind !== 'system')
        throw new HarborFailure(400, 'BAD_REQUEST', `permissions[${i}].kind must be "project" or "system"`);
      if (typeof permission.namespace !== 'string' || permission.namespace === '')
        throw new HarborFailure(
          400,
          'BAD_REQUEST',
          `permissions[${i}].namespace must be a project name, "*" or "/"`,
        );
      if (!Array.isArray(permission.access))
        throw new HarborFailure(400, 'BAD_REQUEST', `permissions[${i}].access must be a list`);
    }
    if (
      body.level === 'project' &&
      (body.permissions.length !== 1 || body.permissions[0]!.kind !== 'project')
    )
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        'a project-level robot must have exactly one project permission',
      );
    if (body.secret !== undefined && !SECRET_RULE.test(body.secret))
      throw new HarborFailure(
        400,
        'BAD_REQUEST',
        'secret must be 8-128 characters with at least one upper-case letter, one lower-case letter and one digit',
      );
    const name =
      body.level === 'project'
        ? `${this.robotPrefix}${body.permissions[0]!.namespace}+${body.name}`
        : `${this.robotPrefix}${body.name}`;
    for (const robot of this.robots.values())
      if (robot.name === name)
        throw new HarborFailure(409, 'CONFLICT', `robot account ${name} already exists`);
    const now = new Date();
    const robot: RobotRecord = {
      id: this.nextRobotId++,
      name,
      secret: body.secret ?? `${randomBytes(12).toString('base64url')}A1a`,
      description: body.description ?? '',
      level: body.level,
      disable: body.disable ?? false,
      duration: body.duration,
      expiresAt: body.duration === -1 ? -1 : Math.floor(now.getTime() / 1000) + body.duration * 86_400,
      permissions: structuredClone(body.permissions),
      creationTime: now,
    };
    this.robots.set(robot.id, robot);
    return robot;
  }

  /**
   * Issues a registry token for the requested scopes, each cut down to what the caller may
   * actually do (the spec says a partial grant is not an error).
   */
  issueToken(
    principal: Principal,
    scopes: string[],
    project: (name: string) => ProjectRecord | undefined,
  ): { token: string; expiresIn: number } {
    const access: GrantedToken['access'] = [];
    for (const scope of scopes) {
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last <= first) continue;
      const type = scope.slice(0, first);
      const name = scope.slice(first + 1, last);
      const wanted = scope.slice(last + 1).split(',');
      if (type === 'registry' && name === 'catalog') {
        if (principal.kind === 'user' && principal.admin) access.push({ type, name, actions: ['*'] });
        continue;
      }
      if (type !== 'repository') continue;
      const owner = project(name.split('/')[0]!);
      const actions = owner
        ? wanted.filter((action) =>
            this.can(principal, {
              project: owner,
              resource: 'repository',
              action: action === '*' ? 'delete' : action,
            }),
          )
        : [];
      access.push({ type, name, actions });
    }
    const token = randomBytes(32).toString('base64url');
    this.tokens.set(token, { principal, access, expiresAt: Date.now() + this.tokenLifetimeSeconds * 1000 });
    return { token, expiresIn: this.tokenLifetimeSeconds };
  }

  /** Whether a bearer token grants `action` on the repository. */
  tokenAllows(header: string | undefined, repository: string, action: string): boolean {
    const value = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    const token = value ? this.tokens.get(value) : undefined;
    if (!token || token.expiresAt <= Date.now()) return false;
    return token.access.some(
      (a) => a.type === 'repository' && a.name === repository && a.actions.includes(action),
    );
  }

  isBearer(header: string | undefined): boolean {
    return /^Bearer\s/i.test(header ?? '');
  }
}
