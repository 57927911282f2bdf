import { endUsersRunOnError } from './runEnding.js';
import { continueAsNew, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import { applicationNotifier, serviceActivities } from './activityProxies.js';
import { countDowngradeFinished, countDowngradeStarted } from './metrics.js';
import { showState } from './showState.js';
import {
  campaignUpdates,
  getCampaignStatus,
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
  const campaign = new CampaignRun(input);
  setHandler(getCampaignStatus, () => campaign.status);
  // A campaign counts as a domain does; each of its users' downgrades counts as `individual` too.
  if (workflowInfo().continuedFromExecutionRunId === undefined) countDowngradeStarted('campaign');
  try {
    if (!input.progress && input.approval) {
      const refused = await campaign.controls.awaitApproval(input.approval);
      if (refused) return campaign.finish(refused.phase, refused.reason);
    }
    campaign.enter(campaign.controls.paused ? 'paused' : 'moving_users');
    await campaign.moveUsers();
    return campaign.finish('completed');
  } catch (error) {
    return await endUsersRunOnError(error, campaign);
  }
}

/** One run of a campaign: its status, its operators' controls and its window over the captured people. */
class CampaignRun {
  readonly status: CampaignStatus;
  readonly controls: OperatorControls<CampaignStatus>;
  readonly #window: UsersWindow;
  readonly #service = serviceActivities();
  readonly #notify = applicationNotifier();

  constructor(private readonly input: CampaignInput) {
    const progress = input.progress;
    this.status = {
      workflowId: workflowInfo().workflowId,
      name: input.name,
      captureId: input.captureId,
      phase: 'moving_users',
      userCount: input.userCount,
      started: progress?.nextPosition ?? 0,
      inFlight: 0,
      counts: { ...progress?.counts },
      runs: (progress?.runs ?? 0) + 1,
      approval: progress?.approval,
      paused: progress?.control?.paused,
    };
    this.controls = new OperatorControls(this.status, {
      subject: `campaign ${input.name}`,
      input,
      updates: campaignUpdates,
      enter: (phase, details) => this.enter(phase as CampaignPhase, details),
    });
    this.#window = new UsersWindow(input.window, input.userCount, {
      nextPosition: progress?.nextPosition ?? 0,
      counts: progress?.counts ?? {},
    });
  }

  enter(phase: CampaignPhase, details: Partial<CampaignStatus> = {}): void {
    Object.assign(this.status, details, { phase });
    showState(phase, describeCampaign(this.status));
  }

  finish(phase: CampaignPhase, reason?: string): CampaignStatus {
    this.enter(phase, { reason, paused: undefined });
    countDowngradeFinished('campaign', phase);
    return this.status;
  }

  async moveUsers(): Promise<void> {
    const { input, status } = this;
    const window = this.#window;
    const { workflowId, taskQueue } = workflowInfo();
    await moveUsersInWindow(window, this.controls, status, {
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
            control: this.controls.control.carry(),
            approval: status.approval,
          },
        }),
      startBatch: async ({ from, size }) => {
        await this.#service.startCampaignUsers({
          campaignId: workflowId,
          captureId: input.captureId,
          from,
          size,
          taskQueue,
          downgrade: input.downgrade,
        });
        return { followUp: Promise.resolve() };
      },
      countOutcomes: () => this.#service.countCampaignOutcomes({ captureId: input.captureId }),
      tripped: () => this.#notify({ type: 'campaign_paused', status }),
    });
  }

  /** Cancels the people whose downgrades were started and have no outcome yet. */
  cancelUsersInFlight(): Promise<void> {
    return this.#service.cancelCampaignUsers({
      campaignId: this.status.workflowId,
      captureId: this.input.captureId,
      before: this.#window.next,
    });
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
