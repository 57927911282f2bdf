import { WorkflowNotFoundError, WorkflowUpdateFailedError } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { CONSENT_LINK_PATH } from '../contracts/callbackPaths.js';
import { CONSENT_REQUEST_RENEWAL_MARGIN_MS, type DowngradeState } from '../workflows/definitions.js';
import type { CallbackDeps } from './delivery.js';
import { serveLink, type Page } from './serveLink.js';

/** What the link says when it sends the person nowhere: the downgrade ended, or is busy for a moment. */
const endings: Record<Exclude<DowngradeState, 'awaiting_reauthorization' | 'awaiting_link_open'>, Page> = {
  completed: [
    200,
    'All done',
    'Your calendar is connected with Free/Busy access. There is nothing more to do.',
  ],
  denied: [
    410,
    'This request has ended',
    'You declined the request, so it has ended. Ask the application for a new one.',
  ],
  expired: [
    410,
    'This request has expired',
    'It was not answered in time. Ask the application for a new one.',
  ],
  link_not_opened: [
    410,
    'This request has expired',
    'It was not opened in time. Ask the application for a new one.',
  ],
  read_write_kept: [
    410,
    'This request has ended',
    'Full access was chosen on every request, so it has ended.',
  ],
  no_access: [410, 'This request has ended', 'No Access was chosen, so the calendar is not connected.'],
  other_account: [410, 'This request has ended', 'Another calendar account was connected, so it has ended.'],
  cancelled: [410, 'This request has ended', 'The application cancelled it.'],
  failed: [410, 'This request has ended', 'It could not be completed. Ask the application for a new one.'],
  revoking: [503, 'Please try again', 'We are preparing your sign-in. Reload this page in a moment.'],
  verifying: [503, 'Please try again', 'We are checking your answer. Reload this page in a moment.'],
};

/**
 * The link a person receives (by email, or from the application): it outlives any one consent request. While the
 * downgrade waits for them it sends the browser on (303) to the current request, or, when that request's `state`
 * has expired, has the downgrade make a fresh one (a new prompt) and sends them there. After the downgrade ended it
 * says how, and starts nothing. Its `state` names the run that issued it and expires with that prompt's deadline;
 * it is not used up by opening.
 */
export function getConsentLink(app: FastifyInstance, deps: CallbackDeps): void {
  serveLink(app, deps, {
    path: CONSENT_LINK_PATH,
    purpose: 'consent_link',
    async follow(claims, log) {
      const status = await deps.downgradeStatus(claims);
      const { state } = status;
      if (state !== 'awaiting_link_open' && state !== 'awaiting_reauthorization') return endings[state];
      if (!status.authorizationUrl) return endings.revoking;
      const left = Date.parse(status.authorizationExpiresAt ?? '') - Date.now();
      if (state === 'awaiting_link_open' || left > CONSENT_REQUEST_RENEWAL_MARGIN_MS) {
        return { location: status.authorizationUrl };
      }
      const location = await deps.renewConsentRequest(claims);
      log.info({ workflowId: claims.workflowId }, 'consent request renewed');
      return { location };
    },
    ended(error, claims, log) {
      if (error instanceof WorkflowNotFoundError) {
        return [410, 'This request has ended', 'The downgrade this link belongs to no longer exists.'];
      }
      if (!(error instanceof WorkflowUpdateFailedError)) return undefined;
      // Refused: no prompt left, or the downgrade moved on meanwhile; the person can reload to see where it is.
      log.warn({ workflowId: claims.workflowId, err: error }, 'consent request not renewed');
      return [410, 'This request can no longer be renewed', 'Ask the application for a new link.'];
    },
  });
}
