import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import type { SimulatorClient, SimulatorState } from './state.js';

/** RFC 6749 error codes, which Cronofy returns with status 400 on its token endpoints. */
export type OAuthError = 'invalid_request' | 'invalid_client' | 'invalid_grant' | 'unsupported_grant_type';

export function sendOAuthError(reply: FastifyReply, error: OAuthError): FastifyReply {
  return reply.code(400).send({ error });
}

const clientCredentialsSchema = z.object({ client_id: z.string(), client_secret: z.string() });

/** Client credentials come from the body only; the Authorization header is ignored, as some SDKs send junk there. */
export function authenticateClient(state: SimulatorState, body: unknown): SimulatorClient | undefined {
  const credentials = clientCredentialsSchema.safeParse(body);
  return credentials.success
    ? state.authenticateClient(credentials.data.client_id, credentials.data.client_secret)
    : undefined;
}

/** The client_id a token-endpoint body claims, for rate limiting before the credentials are checked. */
export function claimedClientId(body: unknown): string | undefined {
  const claimed = z.object({ client_id: z.string() }).safeParse(body);
  return claimed.success ? claimed.data.client_id : undefined;
}
