import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { markCallbackResult } from '../observability/metrics.js';
import type { ReauthorizationCallback } from '../workflows/definitions.js';
import { claimCallback, stateRejections, type CallbackDeps } from './deps.js';
import { answeredUrl, resultPage } from './resultPage.js';
import { InvalidStateError } from '../contracts/stateToken.js';
import { REDIRECT_PATH } from '../contracts/callbackPaths.js';

const RedirectQuery = z.union([
  z.object({ state: z.string().min(1).max(4096), code: z.string().min(1).max(512) }).strict(),
  z
    .object({
      state: z.string().min(1).max(4096),
      error: z.string().min(1).max(128),
      error_description: z.string().max(1024).optional(),
    })
    .strict(),
]);

/**
 * Cronofy sends the person's browser here after the consent page: `?code&state` or `?error&state`. A valid,
 * unused `state` turns into one signal on the workflow it names, and the browser is sent on (303) to a page whose
 * URL carries neither; anything else gets a 4xx and signals nothing.
 */
export function getReauthorizationRedirect(app: FastifyInstance, deps: CallbackDeps): void {
  app.get(REDIRECT_PATH, async (request, reply) => {
    const page = (status: number, title: string, message: string) =>
      reply.code(status).type('text/html; charset=utf-8').send(resultPage(title, message));

    const query = RedirectQuery.safeParse(request.query);
    if (!query.success) {
      return page(
        400,
        'This link is not valid',
        'Expected a code or an error, with a state, and nothing else.',
      );
    }

    let claims;
    try {
      claims = await deps.stateSigner.verify(query.data.state, [
        'individual_reauthorization',
        'enterprise_admin',
      ]);
    } catch (error) {
      if (!(error instanceof InvalidStateError)) throw error;
      request.log.warn({ reason: error.reason }, 'callback rejected: bad state');
      markCallbackResult(request, error.reason);
      const [status, title, message] = stateRejections[error.reason];
      return page(status, title, message);
    }

    const claimed = await claimCallback(deps, claims, 'code' in query.data ? query.data.code : undefined);
    if (!claimed) {
      request.log.warn({ workflowId: claims.workflowId }, 'callback rejected: state already used');
      return page(
        409,
        'This link was already used',
        'Each sign-in link works once. Ask the application for a new one.',
      );
    }

    const { codeRef } = claimed;
    const callback: ReauthorizationCallback = codeRef
      ? { prompt: claims.prompt, nonce: claims.nonce, codeRef }
      : {
          prompt: claims.prompt,
          nonce: claims.nonce,
          error: 'error' in query.data ? query.data.error : 'unknown',
          errorDescription: 'error' in query.data ? query.data.error_description : undefined,
        };

    try {
      await deps.signalReauthorization(claims, callback);
    } catch (error) {
      if (codeRef) await deps.store.deleteSecret(codeRef);
      if (error instanceof WorkflowNotFoundError) {
        request.log.warn(
          { workflowId: claims.workflowId },
          'callback for a downgrade that is no longer running',
        );
        markCallbackResult(request, 'not_running');
        return page(
          410,
          'This request has ended',
          'The downgrade this link belongs to is no longer waiting.',
        );
      }
      // Nothing was delivered: let the person retry the same link.
      await deps.store.releaseStateNonce(claims.nonce);
      request.log.error({ err: error, workflowId: claims.workflowId }, 'could not deliver callback');
      return page(
        503,
        'Please try again',
        'We could not record your answer just now. Reload this page in a minute.',
      );
    }

    request.log.info(
      { workflowId: claims.workflowId, outcome: 'error' in callback ? callback.error : 'code' },
      'callback delivered',
    );
    markCallbackResult(request, 'delivered');
    // The code has done its work: send the browser on so that it does not keep the code in its history.
    return reply.redirect(answeredUrl(codeRef ? 'granted' : 'declined'), 303);
  });
}
