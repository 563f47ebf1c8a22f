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
  const port = Number(env['PORTAL_PORT'] || 4005);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORTAL_PORT: ${env['PORTAL_PORT']} is not a port number`);
  const authMode = env['AUTH_MODE'] || 'dev';
  if (authMode !== 'dev' && authMode !== 'jwt')
    throw new Error(`AUTH_MODE: ${authMode} is neither dev nor jwt`);
  const gatewayUrl = env['PORTAL_GATEWAY_URL'] || 'http://127.0.0.1:4000/graphql';
  if (!URL.canParse(gatewayUrl)) throw new Error(`PORTAL_GATEWAY_URL: ${gatewayUrl} is not a URL`);
  return { port, host: env['HOST'] || '127.0.0.1', gatewayUrl, authMode };
}
