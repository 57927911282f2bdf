import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { OPEN_LINK_PATH } from '../contracts/callbackPaths.js';
import { verifyState, type CallbackDeps } from './delivery.js';
import { resultPage, statePage } from './resultPage.js';

const OpenQuery = z.object({ state: z.string().min(1).max(4096) }).strict();

/**
 * The link a person gets for a downgrade that revokes when they open it: a valid `state` makes the workflow revoke
 * their Read/Write connection and create the consent request, and the browser goes on to Cronofy's consent page
 * (303). Opening it again while that prompt waits goes to the same page. Its nonce is not used up: the update's
 * validator checks it against the run that issued it.
 */
export function getOpenLink(app: FastifyInstance, deps: CallbackDeps): void {
  app.get(OPEN_LINK_PATH, async (request, reply) => {
    const page = (status: number, title: string, message: string) =>
      reply.code(status).type('text/html; charset=utf-8').send(resultPage(title, message));

    const query = OpenQuery.safeParse(request.query);
    if (!query.success) return page(400, 'This link is not valid', 'Expected a state, and nothing else.');
    const claims = await verifyState(deps, request, query.data.state, ['individual_link']);
    if ('refused' in claims) return page(...statePage(claims.refused));

    try {
      const authorizationUrl = await deps.openLink(claims, claims.nonce);
      request.log.info({ workflowId: claims.workflowId }, 'link opened');
      return reply.code(303).header('location', authorizationUrl).send();
    } catch (error) {
      if (error instanceof WorkflowNotFoundError || error instanceof WorkflowUpdateFailedError) {
        request.log.warn(
          { workflowId: claims.workflowId, err: error },
          'open link for a downgrade not waiting',
        );
        return page(
          410,
          'This request has ended',
          'The downgrade this link belongs to is no longer waiting.',
        );
      }
      request.log.error({ err: error, workflowId: claims.workflowId }, 'could not open the link');
      return page(
        503,
        'Please try again',
        'We could not prepare your sign-in just now. Reload this page in a minute.',
      );
    }
  });
}
