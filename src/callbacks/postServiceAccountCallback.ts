import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from '../contracts/callbackPaths.js';
import { markCallbackResult } from '../observability/metrics.js';
import type { UserAccessCallback } from '../workflows/enterpriseDefinitions.js';
import { deliverCallback, stateRejectionStatus, type CallbackDeps } from './delivery.js';

/**
 * Each user's callback URL carries their signed `state` in its query, because Cronofy's failure callbacks carry
 * no state in the body: the URL is the only thing tying an error to a user.
 */
const CallbackQuery = z.object({ state: z.string().min(1).max(4096) }).strict();

const CallbackBody = z.object({
  authorization: z.union([
    z.object({ code: z.string().min(1).max(512), state: z.string().max(4096).optional() }),
    z.object({
      error: z.string().min(1).max(128),
      error_key: z.string().max(128).optional(),
      error_description: z.string().max(1024).optional(),
    }),
  ]),
});

/**
 * Cronofy's asynchronous answer to a service-account access request for one user. A verified, unused state
 * becomes one signal on that user's workflow; a duplicate is acknowledged (so Cronofy stops resending) and sends
 * nothing; anything malformed or forged gets a 4xx.
 */
export function postServiceAccountCallback(
  app: FastifyInstance,
  deps: CallbackDeps,
  publicBaseUrl: () => string,
): void {
  app.post(SERVICE_ACCOUNT_CALLBACK_PATH, async (request, reply) => {
    const fail = (status: number, error: string) => reply.code(status).send({ error });

    const query = CallbackQuery.safeParse(request.query);
    const body = CallbackBody.safeParse(request.body);
    if (!query.success) return fail(400, 'the callback URL must carry exactly one state');
    if (!body.success)
      return fail(400, 'expected {"authorization":{"code","state"}} or {"authorization":{"error",…}}');
    const authorization = body.data.authorization;
    if (
      'code' in authorization &&
      authorization.state !== undefined &&
      authorization.state !== query.data.state
    ) {
      return fail(400, 'the state in the body does not match the callback URL');
    }

    // The code is exchanged with `redirect_uri` = exactly the URL it was posted to.
    const redirectUri = new URL(request.url, publicBaseUrl()).toString();
    const delivery = await deliverCallback(deps, request, {
      state: query.data.state,
      purposes: ['enterprise_user'],
      code: 'code' in authorization ? authorization.code : undefined,
      signal: (claims, codeRef) => {
        const callback: UserAccessCallback = codeRef
          ? { request: claims.prompt, redirectUri, codeRef }
          : {
              request: claims.prompt,
              redirectUri,
              error: 'error' in authorization ? (authorization.error_key ?? authorization.error) : 'unknown',
              errorDescription: 'error' in authorization ? authorization.error_description : undefined,
            };
        return deps.signalUserAccess(claims, callback);
      },
    });
    switch (delivery.outcome) {
      case 'delivered':
        return reply.code(200).send({ ok: true });
      case 'bad_state':
        return fail(stateRejectionStatus[delivery.reason], `state is ${delivery.reason}`);
      case 'used':
        markCallbackResult(request, 'duplicate');
        return reply.code(200).send({ duplicate: true });
      case 'not_running':
        return fail(410, 'this user is no longer waiting for access');
      case 'unavailable':
        return fail(503, 'try again later');
    }
  });
}
