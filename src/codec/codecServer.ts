import { createHash, timingSafeEqual } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { z } from 'zod';
import { loggerOptions } from '../logger.js';

/**
 * The Temporal remote-codec protocol, as the Temporal UI and CLI speak it: `POST …/encode` and `POST …/decode`
 * with a `Payloads` message in proto3 JSON (`{"payloads":[{"metadata":{"encoding":"<base64>"},"data":"<base64>"}]}`)
 * and the same shape back. Only the last path segment counts, so `http://host/{namespace}` endpoints work too.
 */
const base64 = z.string().regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'must be base64');
const JsonPayload = z.object({
  metadata: z.record(z.string(), base64).nullish(),
  data: base64.nullish(),
});
const PayloadsBody = z.object({ payloads: z.array(JsonPayload) });
type JsonPayload = z.infer<typeof JsonPayload>;

const ALLOWED_METHODS = 'POST, OPTIONS';
const ALLOWED_HEADERS = 'content-type, x-namespace, authorization';

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Callers must send `Authorization: Bearer <token>`. */
  token: string;
  /** The one browser origin allowed to call (the Temporal UI), e.g. `http://127.0.0.1:8233`. */
  allowedOrigin: string;
  /**
   * Also accept the Temporal UI's forwarded credentials: with `TEMPORAL_CODEC_PASS_ACCESS_TOKEN=true` the UI sends
   * the signed-in operator's OIDC access token as the bearer token; it must be a JWT from `issuer`, for `audience`,
   * signed by a key of the issuer's JWKS (discovered from the issuer unless `jwksUrl` is given) and not expired.
   */
  oidc?: OidcOptions;
  /**
   * Local development only: also answer the allowed origin's requests without a token. The Temporal UI of a dev
   * server has no way to send one, and everything here listens on loopback.
   */
  trustAllowedOrigin?: boolean;
  host: string;
  port: number;
  bodyLimit?: number;
  logLevel?: string;
}

export interface OidcOptions {
  issuer: string;
  audience: string;
  jwksUrl?: string;
}

export interface RunningCodecServer {
  url: string;
  close(): Promise<void>;
}

export async function startCodecServer(options: CodecServerOptions): Promise<RunningCodecServer> {
  if (options.token.length < 16) throw new Error('codec server token must be at least 16 characters');
  const app = Fastify({
    logger: loggerOptions(options.logLevel ?? 'silent'),
    // A payload may be up to 2 MB; the UI sends the payloads of one event at a time.
    bodyLimit: options.bodyLimit ?? 8 * 1024 * 1024,
  });
  const isServiceToken = bearerTokenCheck(options.token);
  const isOperatorToken = options.oidc ? accessTokenCheck(options.oidc) : async () => false;
  const isAuthorized = async (header: string | undefined) => {
    const token = /^Bearer (.+)$/i.exec(header ?? '')?.[1];
    return token !== undefined && (isServiceToken(token) || (await isOperatorToken(token)));
  };

  // Runs before the body is read: an unauthorized request is never parsed, let alone decoded.
  app.addHook('onRequest', async (request, reply) => {
    const corsAllowed = request.headers.origin === options.allowedOrigin;
    if (corsAllowed) {
      reply
        .header('access-control-allow-origin', options.allowedOrigin)
        .header('access-control-allow-credentials', 'true');
    }
    reply.header('vary', 'Origin');
    if (request.method === 'OPTIONS') {
      if (corsAllowed) {
        reply
          .header('access-control-allow-methods', ALLOWED_METHODS)
          .header('access-control-allow-headers', ALLOWED_HEADERS)
          .header('access-control-max-age', '600');
      }
      return reply.code(204).send();
    }
    if (
      !(options.trustAllowedOrigin && corsAllowed) &&
      !(await isAuthorized(request.headers.authorization))
    ) {
      return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'unauthorized' });
    }
  });

  const convert =
    (direction: 'encode' | 'decode') => async (request: FastifyRequest, reply: FastifyReply) => {
      const body = PayloadsBody.safeParse(request.body);
      if (!body.success) {
        return reply.code(400).send({ error: 'body must be {"payloads":[{"metadata":{…},"data":"…"}]}' });
      }
      let converted: Payload[];
      try {
        converted = await options.codec[direction](body.data.payloads.map(fromJson));
      } catch (error) {
        request.log.warn({ err: error, namespace: request.headers['x-namespace'] }, `${direction} failed`);
        return reply.code(400).send({ error: (error as Error).message });
      }
      return reply.send({ payloads: converted.map(toJson) });
    };
  app.post('/*', async (request, reply) => {
    const lastSegment = request.url.split('?')[0]?.split('/').pop();
    if (lastSegment === 'encode' || lastSegment === 'decode') return convert(lastSegment)(request, reply);
    return reply.code(404).send({ error: 'not found' });
  });
  app.options('/*', async (_request, reply) => reply.code(204).send());

  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { url: `http://${options.host}:${port}`, close: () => app.close() };
}

/** Compares digests, so neither the token's content nor its length leaks through timing. */
function bearerTokenCheck(token: string): (candidate: string) => boolean {
  const expected = createHash('sha256').update(token).digest();
  return (candidate) => timingSafeEqual(createHash('sha256').update(candidate).digest(), expected);
}

/**
 * Verifies an operator's OIDC access token (a JWT) against the issuer's published keys. The JWKS is fetched on
 * first use and cached by jose (refetched when a token names an unknown key id); a failed discovery is retried on
 * the next request.
 */
function accessTokenCheck(oidc: OidcOptions): (token: string) => Promise<boolean> {
  let keys: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const jwks = () =>
    (keys ??= discoverJwksUrl(oidc)
      .then((url) => createRemoteJWKSet(url))
      .catch((error: unknown) => {
        keys = undefined;
        throw error;
      }));
  return async (token) => {
    if (token.split('.').length !== 3) return false;
    try {
      await jwtVerify(token, await jwks(), {
        issuer: oidc.issuer,
        audience: oidc.audience,
        algorithms: ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'],
      });
      return true;
    } catch {
      return false;
    }
  };
}

const OpenIdConfiguration = z.object({ jwks_uri: z.url() });

async function discoverJwksUrl(oidc: OidcOptions): Promise<URL> {
  if (oidc.jwksUrl) return new URL(oidc.jwksUrl);
  const discovery = new URL('.well-known/openid-configuration', oidc.issuer.replace(/\/?$/, '/'));
  const response = await fetch(discovery, { signal: AbortSignal.timeout(5_000) });
  if (!response.ok) throw new Error(`OIDC discovery at ${discovery.href} answered ${response.status}`);
  return new URL(OpenIdConfiguration.parse(await response.json()).jwks_uri);
}

function fromJson({ metadata, data }: JsonPayload): Payload {
  return {
    metadata: Object.fromEntries(
      Object.entries(metadata ?? {}).map(([key, value]) => [key, Buffer.from(value, 'base64')]),
    ),
    data: Buffer.from(data ?? '', 'base64'),
  };
}

function toJson({ metadata, data }: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(
      Object.entries(metadata ?? {}).map(([key, value]) => [
        key,
        Buffer.from(value ?? []).toString('base64'),
      ]),
    ),
    data: Buffer.from(data ?? []).toString('base64'),
  };
}
