import { getClient } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { cancelUnfinished, wholeBatch } from './capturedUsers.js';
import type { Campaigns } from '../store/campaigns.js';
import { campaignUserWorkflowId, type CampaignDowngradeOptions } from '../workflows/campaignDefinitions.js';
import { searchAttributes, stateAtStart, type IndividualDowngradeInput } from '../workflows/definitions.js';

/** The activities of an Individual campaign: its users' downgrades are started, counted and cancelled here. */
export function createCampaignActivities(campaigns: Campaigns) {
  return {
    /**
     * Starts the downgrades of a batch of the campaign's users through the worker's own Temporal client. Each id is
     * fixed by the capture and position and may be used once, so a retried activity never starts a user twice.
     */
    async startCampaignUsers(request: {
      campaignId: string;
      captureId: string;
      from: number;
      size: number;
      taskQueue: string;
      downgrade: CampaignDowngradeOptions;
    }): Promise<void> {
      const users = wholeBatch(await campaigns.page(request.captureId, request.from, request.size), request);
      const client = getClient();
      await Promise.all(
        users.map(async (user, index) => {
          const position = request.from + index;
          const input: IndividualDowngradeInput = {
            ...request.downgrade,
            sub: user.sub,
            userId: user.userId,
            email: user.email,
            credentialRef: user.credentialRef,
            campaign: { captureId: request.captureId, position },
            stateAtStart: stateAtStart(request.downgrade),
          };
          try {
            await client.workflow.start('individualDowngrade', {
              workflowId: campaignUserWorkflowId(request.campaignId, request.captureId, position),
              taskQueue: request.taskQueue,
              args: [input],
              workflowIdReusePolicy: 'REJECT_DUPLICATE',
              typedSearchAttributes: new TypedSearchAttributes([
                { key: searchAttributes.kind, value: 'individual' },
                { key: searchAttributes.sub, value: user.sub },
                { key: searchAttributes.state, value: stateAtStart(request.downgrade) },
              ]),
            });
          } catch (error) {
            if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
          }
        }),
      );
    },

    async countCampaignOutcomes(request: { captureId: string }): Promise<Record<string, number>> {
      return campaigns.countsByState(request.captureId);
    },

    /** Recorded by each user's downgrade as it ends; idempotent. */
    async recordCampaignOutcome(request: {
      captureId: string;
      sub: string;
      state: string;
      reason?: string;
      providerName?: string;
      credentialRef?: string;
    }): Promise<void> {
      await campaigns.recordOutcome(request.captureId, request);
    },

    /** Cancels the downgrades of the users started (positions before `before`) that have no outcome yet. */
    cancelCampaignUsers: cancelUnfinished(
      campaigns,
      (request: { campaignId: string; captureId: string; before: number }, position) =>
        campaignUserWorkflowId(request.campaignId, request.captureId, position),
    ),
  };
}
