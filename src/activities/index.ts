import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { CONSENT_LINK_PATH, OPEN_LINK_PATH } from '../contracts/callbackPaths.js';
import type { IssuingRun, PromptRequest } from '../contracts/stateToken.js';
import { callCronofy } from './callCronofy.js';
import { exchangeCodeOnce } from './exchangeCode.js';
import { createCampaignActivities } from './campaign.js';
import { createEnterpriseActivities } from './enterprise.js';
import type { ActivityDeps, ExchangedGrant } from './deps.js';
import type { ApplicationEvent, FreeBusyProvider } from '../workflows/definitions.js';
import type { DomainEvent } from '../workflows/enterpriseDefinitions.js';
import type { CampaignEvent } from '../workflows/campaignDefinitions.js';

/** The scope a downgrade asks for: Free/Busy write is what makes Cronofy offer the access-mode choice. */
export const REAUTHORIZATION_SCOPE = ['free_busy_write'] as const;

/**
 * The activities that call Cronofy. They are registered only on the Cronofy task queue, whose server-enforced rate
 * limit keeps every worker together under Cronofy's, and workflows reach them only through cronofyActivities().
 */
export const CRONOFY_ACTIVITIES = [
  'revokeAuthorization',
  'exchangeAuthorizationCode',
  'exchangeServiceAccountCode',
  'inspectServiceAccount',
  'requestUserAccess',
  'exchangeUserAccessCode',
] as const;
type CronofyActivityName = (typeof CRONOFY_ACTIVITIES)[number];
type AllActivities = ReturnType<typeof createActivities>;
export type CronofyActivities = Pick<AllActivities, CronofyActivityName>;
/** The service's own I/O (its database, signing, starting workflows): the main task queue's activities. */
export type ServiceActivities = Omit<AllActivities, CronofyActivityName>;

/** The activities split by the task queue that runs them. */
export function createActivitiesByQueue(deps: ActivityDeps): {
  cronofy: CronofyActivities;
  service: ServiceActivities;
} {
  const all: Record<string, unknown> = createActivities(deps);
  const cronofy: Record<string, unknown> = {};
  const service: Record<string, unknown> = {};
  for (const [name, activity] of Object.entries(all)) {
    ((CRONOFY_ACTIVITIES as readonly string[]).includes(name) ? cronofy : service)[name] = activity;
  }
  return { cronofy: cronofy as CronofyActivities, service: service as ServiceActivities };
}

/** Activities do the I/O of a downgrade; each takes and returns references, never a token or a code. */
function createActivities(deps: ActivityDeps) {
  const { cronofy, store, stateSigner } = deps;

  return {
    ...createEnterpriseActivities(deps),
    ...createCampaignActivities(deps.campaigns),

    async revokeAuthorization(target: { credentialRef: string } | { sub: string }): Promise<void> {
      if ('sub' in target) {
        await callCronofy(() => cronofy.revokeAuthorization({ sub: target.sub }));
        return;
      }
      const credentials = await store.getCredentials(target.credentialRef);
      const token = credentials.refreshToken ?? credentials.accessToken;
      await callCronofy(() => cronofy.revokeAuthorization({ token }));
      await store.markRevoked(target.credentialRef);
    },

    /** The service's own link, for a downgrade that revokes only when the person opens it. */
    async createOpenLink(
      request: IssuingRun & { expiresAt: number },
    ): Promise<{ url: string; nonce: string }> {
      const { state, nonce } = await stateSigner.issue({ ...request, prompt: 1 }, 'individual_link');
      const url = new URL(OPEN_LINK_PATH, deps.redirectUri);
      url.searchParams.set('state', state);
      return { url: url.toString(), nonce };
    },

    async createAuthorizationRequest(
      request: PromptRequest & {
        providerHint?: FreeBusyProvider;
        /** The prompt's deadline: the service's link to the current request works until then. */
        deadline?: number;
      },
    ): Promise<{ authorizationUrl: string; nonce: string; link?: string }> {
      const { state, nonce } = await stateSigner.issue(request, 'individual_reauthorization');
      const authorizationUrl = cronofy.authorizationUrl({
        redirectUri: deps.redirectUri,
        scope: REAUTHORIZATION_SCOPE,
        state,
        providerName: request.providerHint,
      });
      if (request.deadline === undefined) return { authorizationUrl, nonce };
      const linkState = await stateSigner.issue({ ...request, expiresAt: request.deadline }, 'consent_link');
      const link = new URL(CONSENT_LINK_PATH, deps.redirectUri);
      link.searchParams.set('state', linkState.state);
      return { authorizationUrl, nonce, link: link.toString() };
    },

    async exchangeAuthorizationCode(request: {
      codeRef: string;
      workflowId: string;
    }): Promise<ExchangedGrant> {
      const credentials = await exchangeCodeOnce(deps, {
        codeRef: request.codeRef,
        redirectUri: deps.redirectUri,
        kind: 'account',
        label: request.workflowId,
      });
      if (!credentials.providerName) {
        throw ApplicationFailure.nonRetryable(
          'Cronofy token response has no linking_profile',
          'CronofyResponseError',
        );
      }
      return {
        credentialRef: credentials.ref,
        sub: credentials.sub,
        providerName: credentials.providerName,
        providerService: credentials.providerService,
      };
    },

    /**
     * Records an event for delivery (the application's webhook; the person's mailbox, given an address). Its id is
     * the run's and this activity's place in it: the same whenever the workflow records it again.
     */
    async notifyApplication(
      event: ApplicationEvent | DomainEvent | CampaignEvent,
      recipient?: { email?: string },
    ): Promise<void> {
      if (!deps.notifications) return;
      const { workflowExecution: run, activityId } = Context.current().info;
      if (!run) throw ApplicationFailure.nonRetryable('notifyApplication runs for a workflow only');
      const hash = createHash('sha256').update(`${run.runId}/${activityId}`).digest('base64url');
      await deps.notifications.record({
        eventId: `msg_${hash.slice(0, 27)}`,
        stream: run.workflowId,
        eventType: event.type,
        body: JSON.stringify(event),
        email: recipient?.email,
      });
    },
  };
}
