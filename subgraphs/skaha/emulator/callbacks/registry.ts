import { randomUUID } from 'node:crypto';
import type { CallbackRegistration } from '../../src/skaha/types.ts';
import { badRequest } from '../http/errors.ts';

export interface Registration extends CallbackRegistration {
  owner: string;
  secret: string;
  /** Survives a restart: per-session ones live on the Job; user-wide ones only if so configured. */
  persisted: boolean;
}

export const MIN_SECRET_LENGTH = 16;

/** Who wants to hear about which sessions. */
export class CallbackRegistry {
  private readonly registrations = new Map<string, Registration>();

  constructor(private readonly persistUserRegistrations: boolean) {}

  /**
   * Idempotent per (owner, url, session): registering again returns the same id with the new
   * secret, so a client may retry a registration whose answer it lost.
   */
  register(
    owner: string,
    urlText: string | undefined,
    secretText: string | undefined,
    session?: string,
  ): Registration {
    const { url, secret } = CallbackRegistry.check(urlText, secretText);
    const existing = [...this.registrations.values()].find(
      (r) => r.owner === owner && r.url === url && r.session === session,
    );
    if (existing) {
      existing.secret = secret;
      return existing;
    }
    const registration: Registration = {
      id: randomUUID(),
      url,
      ...(session ? { session } : {}),
      created: new Date().toISOString(),
      owner,
      secret,
      persisted: session !== undefined || this.persistUserRegistrations,
    };
    this.registrations.set(registration.id, registration);
    return registration;
  }

  /** Throws a 400 naming the field unless both make a usable registration. */
  static check(url: string | undefined, secret: string | undefined): { url: string; secret: string } {
    if (!url) throw badRequest('url is required');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw badRequest(`url ${url} is not an absolute URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw badRequest(`url ${url} must use http or https`);
    if (!secret || secret.length < MIN_SECRET_LENGTH)
      throw badRequest(`secret must be at least ${MIN_SECRET_LENGTH} characters`);
    return { url, secret };
  }

  get size(): number {
    return this.registrations.size;
  }

  list(owner: string): Registration[] {
    return [...this.registrations.values()].filter((r) => r.owner === owner);
  }

  get(owner: string, id: string): Registration | undefined {
    const registration = this.registrations.get(id);
    return registration?.owner === owner ? registration : undefined;
  }

  remove(id: string): void {
    this.registrations.delete(id);
  }

  /** Where a session's events go: its own registrations, then its owner's, one per URL. */
  targets(owner: string, session: string): Registration[] {
    const own = this.list(owner);
    const ordered = [
      ...own.filter((r) => r.session === session),
      ...own.filter((r) => r.session === undefined),
    ];
    const seen = new Set<string>();
    return ordered.filter((r) => !seen.has(r.url) && seen.add(r.url));
  }

  /** The session is gone, and its Job annotations with it. */
  removeSession(session: string): void {
    for (const [id, registration] of this.registrations)
      if (registration.session === session) this.registrations.delete(id);
  }

  /** A restart keeps only what was persisted. */
  forgetVolatile(): void {
    for (const [id, registration] of this.registrations)
      if (!registration.persisted) this.registrations.delete(id);
  }

  /** The public form: never the secret. */
  static view(registration: Registration): CallbackRegistration {
    const { id, url, session, created } = registration;
    return { id, url, ...(session ? { session } : {}), created };
  }
}
