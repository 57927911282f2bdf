import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { OPEN_LINK_PATH } from '../contracts/callbackPaths.js';
import type { CallbackDeps } from './delivery.js';
import { serveLink } from './serveLink.js';

/**
 * The link a person gets for a downgrade that revokes when they open it: a valid `state` makes the workflow revoke
 * their Read/Write connection and create the consent request, and the browser goes on to Cronofy's consent page
 * (303). Opening it again while that prompt waits goes to the same page. Its nonce is not used up: the update's
 * validator checks it against the run that issued it.
 */
export function getOpenLink(app: FastifyInstance, deps: CallbackDeps): void {
  serveLink(app, deps, {
    path: OPEN_LINK_PATH,
    purpose: 'individual_link',
    async follow(claims, log) {
      const location = await deps.openLink(claims, claims.nonce);
      log.info({ workflowId: claims.workflowId }, 'link opened');
      return { location };
    },
    ended(error, claims, log) {
      if (!(error instanceof WorkflowNotFoundError || error instanceof WorkflowUpdateFailedError))
        return undefined;
      log.warn({ workflowId: claims.workflowId, err: error }, 'open link for a downgrade not waiting');
      return [410, 'This request has ended', 'The downgrade this link belongs to is no longer waiting.'];
    },
  });
}
