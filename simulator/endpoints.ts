/**
 * Every simulated Cronofy endpoint has a name. Routes declare it in their config; the fault, rate-limit and
 * request-log hooks use it to decide what applies to a request.
 */
export const apiEndpoints = [
  'token',
  'revoke',
  'revoke_profile',
  'userinfo',
  'service_account_authorizations',
] as const;
export type ApiEndpoint = (typeof apiEndpoints)[number];

/** Browser pages: faults apply, rate limits and the request log do not. */
export const pageEndpoints = ['authorize', 'enterprise_authorize'] as const;
export type PageEndpoint = (typeof pageEndpoints)[number];

export type Endpoint = ApiEndpoint | PageEndpoint;
export const endpoints: readonly Endpoint[] = [...apiEndpoints, ...pageEndpoints];

export function isApiEndpoint(endpoint: Endpoint | undefined): endpoint is ApiEndpoint {
  return (apiEndpoints as readonly string[]).includes(endpoint ?? '');
}

declare module 'fastify' {
  interface FastifyContextConfig {
    endpoint?: Endpoint;
  }
}
