import type { FastifyReply, FastifyRequest } from 'fastify';

export function bearerTokenOf(request: FastifyRequest): string | undefined {
  const match = /^Bearer +(\S+) *$/i.exec(request.headers.authorization ?? '');
  return match?.[1];
}

/** 401 with an empty body: the caller refreshes its token once and retries. */
export function sendInvalidToken(reply: FastifyReply, token: string | undefined): FastifyReply {
  const challenge =
    token === undefined ? 'Bearer realm="Cronofy"' : 'Bearer realm="Cronofy", error="invalid_token"';
  return reply.code(401).header('WWW-Authenticate', challenge).send();
}
