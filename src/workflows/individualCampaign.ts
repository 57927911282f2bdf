import {
  ActivityFailure,
  CancellationScope,
  continueAsNew,
  isCancellation,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import { applicationNotifier, serviceActivities } from './activityProxies.js';
import { showState } from './showState.js';
import {
  approveCampaign,
  getCampaignStatus,
  pauseCampaign,
  rejectCampaign,
  resumeCampaign,
  type CampaignInput,
  type CampaignPhase,
  type CampaignStatus,
} from './campaignDefinitions.js';
import { describeDecisions, describeUsers, OperatorControls } from './operatorControls.js';
import { historyFull, moveUsersInWindow } from './usersLoop.js';
import { UsersWindow } from './usersWindow.js';

/**
 * Moves many Individual Connect users to Free/Busy as one campaign: wait for an operator to approve its preview →
 * start each user's own `individualDowngrade` in a sliding window, reading their outcomes from the store → end
 * when every user has one. Operators pause and resume it; the circuit breaker pauses it when failures pile up.
 */
export async function individualCampaign(input: CampaignInput): Promise<CampaignStatus> {
  const service = serviceActivities();
  const notify = applicationNotifier();
  const info = workflowInfo();
  const status: CampaignStatus = {
    workflowId: info.workflowId,
    name: input.name,
    captureId: input.captureId,
    phase: 'moving_users',
    userCount: input.userCount,
    started: input.progress?.nextPosition ?? 0,
    inFlight: 0,
    counts: { ...input.progress?.counts },
    runs: (input.progress?.runs ?? 0) + 1,
    approval: input.progress?.approval,
    paused: input.progress?.control?.paused,
  };
  const enter = (phase: CampaignPhase, details: Partial<CampaignStatus> = {}) => {
    Object.assign(status, details, { phase });
    showState(phase, describeCampaign(status));
  };
  const controls = new OperatorControls(status, {
    subject: `campaign ${input.name}`,
    enter: (phase, details) => enter(phase as CampaignPhase, details),
    breaker: input.breaker,
    carried: input.progress?.control,
    previewId: input.approval?.previewId,
  });
  controls.register({
    approve: approveCampaign,
    reject: rejectCampaign,
    pause: pauseCampaign,
    resume: resumeCampaign,
  });
  setHandler(getCampaignStatus, () => status);
  const window = new UsersWindow(input.window, input.userCount, {
    nextPosition: input.progress?.nextPosition ?? 0,
    counts: input.progress?.counts ?? {},
  });
  const finish = (phase: CampaignPhase, reason?: string) => {
    enter(phase, { reason, paused: undefined });
    return status;
  };

  try {
    if (!input.progress && input.approval) {
      const refused = await controls.awaitApproval(input.approval);
      if (refused) return finish(refused.phase, refused.reason);
    }
    enter(controls.paused ? 'paused' : 'moving_users');
    await moveUsersInWindow(window, controls, status, {
      show: () => {
        Object.assign(status, { counts: window.counts, inFlight: window.inFlight, started: window.next });
        setCurrentDetails(describeCampaign(status));
      },
      historyFull: () => historyFull(input.historyEventBudget),
      continueAsNew: () =>
        continueAsNew<typeof individualCampaign>({
          ...input,
          progress: {
            nextPosition: window.next,
            counts: window.counts,
            runs: status.runs,
            control: controls.control.carry(),
            approval: status.approval,
          },
        }),
      startBatch: async ({ from, size }) => {
        await service.startCampaignUsers({
          campaignId: info.workflowId,
          captureId: input.captureId,
          from,
          size,
          taskQueue: info.taskQueue,
          downgrade: input.downgrade,
        });
        return { followUp: Promise.resolve() };
      },
      countOutcomes: () => service.countCampaignOutcomes({ captureId: input.captureId }),
      tripped: () => notify({ type: 'campaign_paused', status }),
    });
    return finish('completed');
  } catch (error) {
    if (isCancellation(error)) {
      enter('cancelled', { reason: 'cancelled by request', paused: undefined });
      await CancellationScope.nonCancellable(() =>
        service.cancelCampaignUsers({
          campaignId: info.workflowId,
          captureId: input.captureId,
          before: window.next,
        }),
      );
      throw error;
    }
    if (error instanceof ActivityFailure) {
      return finish('failed', `${error.activityType}: ${error.cause?.message ?? error.message}`);
    }
    throw error;
  }
}

/** What the Temporal UI shows operators as the run's current details. */
function describeCampaign(status: CampaignStatus): string {
  const lines = [
    `**${status.phase}** · campaign ${status.name} · run ${status.runs}`,
    ...describeDecisions(status),
  ];
  lines.push(describeUsers(status));
  if (status.reason) lines.push(`Reason: ${status.reason}`);
  return lines.join('\n\n');
}
