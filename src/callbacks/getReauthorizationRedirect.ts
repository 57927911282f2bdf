import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { REDIRECT_PATH } from '../contracts/callbackPaths.js';
import type { ReauthorizationCallback } from '../workflows/definitions.js';
import { deliverCallback, type CallbackDeps } from './delivery.js';
import { answeredUrl, resultPage, statePage } from './resultPage.js';

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
 * unused `state` turns into one signal on the workflow it names, and the browser is sent on (303) to the page that
 * tells how the downgrade judged the answer (getAnsweredPage.ts), whose URL carries neither; anything else gets a
 * 4xx and signals nothing.
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
    const answer = query.data;
    const delivery = await deliverCallback(deps, request, {
      state: answer.state,
      purposes: ['individual_reauthorization', 'enterprise_admin'],
      code: 'code' in answer ? answer.code : undefined,
      signal: (claims, codeRef) => {
        const callback: ReauthorizationCallback = codeRef
          ? { prompt: claims.prompt, nonce: claims.nonce, codeRef }
          : {
              prompt: claims.prompt,
              nonce: claims.nonce,
              error: 'error' in answer ? answer.error : 'unknown',
              errorDescription: 'error' in answer ? answer.error_description : undefined,
            };
        return deps.signalReauthorization(claims, callback);
      },
    });
    switch (delivery.outcome) {
      case 'delivered': {
        const { claims } = delivery;
        const answered = await answeredUrl(deps.stateSigner, {
          workflowId: claims.workflowId,
          runId: delivery.runId,
          prompt: claims.prompt,
          asked: claims.purpose === 'enterprise_admin' ? 'administrator' : 'person',
        });
        // The code has done its work: send the browser on so that it does not keep the code in its history. The
        // page waits there for the verdict, so that this answer stays quick.
        return reply.redirect(answered, 303);
      }
      case 'bad_state':
        return page(...statePage(delivery.reason));
      case 'used':
        return page(
          409,
          'This link was already used',
          'Each sign-in link works once. Ask the application for a new one.',
        );
      case 'not_running':
        return page(
          410,
          'This request has ended',
          'The downgrade this link belongs to is no longer waiting.',
        );
      case 'unavailable':
        // Nothing was kept: the same link works again.
        return page(
          503,
          'Please try again',
          'We could not record your answer just now. Reload this page in a minute.',
        );
    }
  });
}
