/**
 * The Cronofy downgrade service's HTTP API from TypeScript: openapi-fetch over the types generated from the API's
 * OpenAPI document (./openapi.ts, `npm run client:types` in the service's repository). No route is written here by
 * hand: every path, parameter, body, answer and problem comes from the generated types.
 */
import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './openapi.js';

export type { components, operations, paths } from './openapi.js';

/** The client: `GET`, `POST`, … on the API's paths, each answering `{ data, error, response }`. */
export type ApiClient = Client<paths>;

/** Every error the API answers with (`application/problem+json`); branch on its `code`. */
export type Problem = components['schemas']['Problem'];
export type ProblemCode = Problem['code'];

export interface ApiClientOptions {
  /** Where the API is, without `/v1`: `https://downgrades.example.com`. */
  baseUrl: string;
  /** A key of the service (`cdk_…`), sent as `Authorization: Bearer` with every request. */
  apiKey: string;
  /** Another fetch than the global one (a proxy, a test double). */
  fetch?: ClientOptions['fetch'];
}

/** A client of the API: `const { data, error } = await api.GET('/v1/downgrades/{workflowId}', { params: … })`. */
export function createApiClient({ baseUrl, apiKey, fetch }: ApiClientOptions): ApiClient {
  return createClient<paths>({
    baseUrl: baseUrl.replace(/\/+$/, ''),
    headers: { authorization: `Bearer ${apiKey}` },
    ...(fetch ? { fetch } : {}),
  });
}

/**
 * A new `Idempotency-Key` for a POST: keep it with the work it belongs to and send the same key when retrying that
 * POST, so that it is answered once (a replay carries `Idempotent-Replayed: true`).
 */
export function idempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}
