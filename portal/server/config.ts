import { envChoice, envNumber, envString, ConfigError } from '@srcnet/service-kit/config';

/** The portal server's settings, all from the environment (docs/portal.md). */
export interface PortalConfig {
  port: number;
  host: string;
  /** The gateway's GraphQL endpoint as the browser reaches it (the gateway answers CORS itself). */
  gatewayUrl: string;
  /** The gateway's identity mode: the page asks for a dev user name or for a bearer token. */
  authMode: 'dev' | 'jwt';
}

/** What the page reads at /config.json. */
export type PageConfig = Pick<PortalConfig, 'gatewayUrl' | 'authMode'>;

export function loadPortalConfig(env: Record<string, string | undefined>): PortalConfig {
  const gatewayUrl = envString(env, 'PORTAL_GATEWAY_URL', 'http://127.0.0.1:4000/graphql');
  if (!URL.canParse(gatewayUrl)) throw new ConfigError(`PORTAL_GATEWAY_URL=${gatewayUrl} must be a URL`);
  return {
    port: envNumber(env, 'PORTAL_PORT', 4005, { min: 0, max: 65535 }),
    host: envString(env, 'HOST', '127.0.0.1'),
    gatewayUrl,
    authMode: envChoice(env, 'AUTH_MODE', ['dev', 'jwt'] as const, 'dev'),
  };
}
