import { randomBytes } from 'node:crypto';
import { TypedSearchAttributes } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { Campaigns, CampaignReportRow, CampaignUser } from '../store/campaigns.js';
import type { Capture } from '../store/capturedPeople.js';
import type { CredentialStore } from '../store/credentialStore.js';
import {
  campaignUpdates,
  campaignWorkflowId,
  getCampaignStatus,
  type CampaignInput,
  type CampaignStatus,
} from '../workflows/campaignDefinitions.js';
import { searchAttributes, type FreeBusyProvider } from '../workflows/definitions.js';
import type { BreakerThresholds } from '../workflows/enterpriseDefinitions.js';
import type { individualCampaign } from '../workflows/individualCampaign.js';
import { DowngradeRefusedError, DowngradeUsageError, PreviewNotFoundError } from './errors.js';
import { operatedRunHasEnded } from '../workflows/endings.js';
import type { DowngradeDefaults } from './individualClient.js';
import { OperatedRuns } from './operatedRuns.js';
import { DEFAULT_APPROVAL_DEADLINE_MS, DEFAULT_BREAKER } from './workflowCalls.js';

export interface CampaignPerson {
  /** The Cronofy account (`acc_…`). */
  sub: string;
  userId?: string;
  /** Their Read/Write refresh token: stored encrypted, and revoked. Without it the downgrade revokes by sub. */
  refreshToken?: string;
  /** Their address: with email configured they receive the link, reminders and the confirmation. */
  email?: string;
}

export interface CampaignPreview {
  previewId: string;
  name: string;
  createdAt: string;
  users: { count: number } & Capture['dropped'];
  /** A revoke and a code exchange per user (more when someone chooses Read/Write again and is asked again). */
  cronofyCalls: { total: number; revokes: number; userExchanges: number };
  /** At the configured rate limit, not counting the time people take to consent. */
  estimatedSeconds: number;
  cronofyCallsPerSecond: number;
  warnings: string[];
}

export interface StartCampaign {
  name: string;
  /** Start from this preview; without it (and unless `requireApproval` is false) the client previews first. */
  previewId?: string;
  users?: Iterable<readonly CampaignPerson[]> | AsyncIterable<readonly CampaignPerson[]>;
  requireApproval?: boolean;
  approvalDeadlineMs?: number;
  breaker?: BreakerThresholds | false;
  /** Users' downgrades running at once (default 500). */
  window?: number;
  deadlineMs?: number;
  reminderIntervalMs?: number;
  maxPrompts?: number;
  /** How long one consent request works (IndividualDowngradeInput); by default as long as its prompt waits. */
  consentRequestLifetimeMs?: number;
  providerHint?: FreeBusyProvider;
  revokeWhenOpened?: boolean;
  historyEventBudget?: number;
}

export interface CampaignClientOptions {
  temporal: Client;
  taskQueue: string;
  /** The service's database: where users are captured and each user's outcome recorded. */
  campaigns: Campaigns;
  /** Where the users' refresh tokens are kept, encrypted, until revoked. */
  store: CredentialStore;
  defaults: DowngradeDefaults;
  cronofyCallsPerSecond?: number;
}

/**
 * Campaigns of Individual downgrades through Temporal alone, by name: follow, operate and cancel them (cancelling
 * one cancels the downgrades of its users still under way).
 */
export class CampaignRuns extends OperatedRuns<CampaignStatus> {
  constructor(temporal: Client) {
    super(temporal, {
      workflowId: campaignWorkflowId,
      subject: (name) => `campaign ${name}`,
      status: getCampaignStatus,
      updates: campaignUpdates,
    });
  }
}

/**
 * Campaigns of Individual downgrades: one run that moves many Individual Connect users (an application moving all
 * its Read/Write users), each still their own `individualDowngrade`, with a preview, approval, pause, circuit
 * breaker, counts and a per-user report.
 */
export class CampaignClient extends CampaignRuns {
  private readonly campaigns: Campaigns;
  private readonly store: CredentialStore;

  constructor(private readonly options: CampaignClientOptions) {
    super(options.temporal);
    this.campaigns = options.campaigns;
    this.store = options.store;
  }

  /** Captures the users (their refresh tokens into the credential store); changes nothing at Cronofy. */
  async preview(request: {
    name: string;
    users: Iterable<readonly CampaignPerson[]> | AsyncIterable<readonly CampaignPerson[]>;
  }): Promise<CampaignPreview> {
    const capture = await this.campaigns.capture(this.storeTokens(request.name, request.users));
    const previewId = `pv_${randomBytes(12).toString('base64url')}`;
    const perSecond = this.options.cronofyCallsPerSecond ?? 8;
    const warnings = [
      ...(capture.count === 0 ? ['no users'] : []),
      ...(capture.dropped.duplicates > 0 ? [`${capture.dropped.duplicates} duplicate subs dropped`] : []),
      ...(capture.dropped.malformed > 0 ? [`${capture.dropped.malformed} malformed subs dropped`] : []),
      ...((await this.running(request.name)) ? [`campaign ${request.name} is already running`] : []),
    ];
    const preview: CampaignPreview = {
      previewId,
      name: request.name,
      createdAt: new Date().toISOString(),
      users: { count: capture.count, ...capture.dropped },
      cronofyCalls: { total: 2 * capture.count, revokes: capture.count, userExchanges: capture.count },
      estimatedSeconds: Math.ceil((2 * capture.count) / perSecond),
      cronofyCallsPerSecond: perSecond,
      warnings,
    };
    await this.campaigns.savePreview({
      previewId,
      name: request.name,
      captureId: capture.captureId,
      preview,
    });
    return preview;
  }

  async getPreview(previewId: string): Promise<CampaignPreview> {
    const record = await this.campaigns.getPreview(previewId);
    if (!record) throw new PreviewNotFoundError(`no campaign preview ${previewId}`);
    return record.preview as CampaignPreview;
  }

  /** Starts a campaign; by default it waits for an operator to approve its preview before any user starts. */
  async start(request: StartCampaign): Promise<{ workflowId: string; runId: string; previewId?: string }> {
    const workflowId = campaignWorkflowId(request.name);
    const running = await this.running(request.name);
    if (running) return { workflowId, runId: running };
    const requireApproval = request.requireApproval ?? true;
    const previewId =
      request.previewId ??
      (requireApproval
        ? (await this.preview({ name: request.name, users: request.users ?? [] })).previewId
        : undefined);
    const capture = previewId
      ? await this.previewedCapture(request.name, previewId)
      : await this.campaigns.capture(this.storeTokens(request.name, request.users ?? []));
    const approval =
      previewId && requireApproval
        ? { previewId, deadlineMs: request.approvalDeadlineMs ?? DEFAULT_APPROVAL_DEADLINE_MS }
        : undefined;
    return { ...(await this.startRun(request, capture, approval)), previewId };
  }

  /**
   * Asks again the people of a completed campaign whose downgrade failed or expired: a new run of the campaign over
   * just those people, with the tokens they were captured with, started at once (the campaign was approved). A
   * campaign still running is refused, not waited for.
   */
  async retryFailed(
    name: string,
    settings: Omit<StartCampaign, 'name' | 'previewId' | 'users' | 'requireApproval'> = {},
  ): Promise<{ workflowId: string; runId: string; users: number }> {
    const finished = await this.get(name);
    if (!operatedRunHasEnded(finished.phase)) {
      throw new DowngradeRefusedError(
        `campaign ${name} is still ${finished.phase}; retry its failed people once it has completed`,
      );
    }
    if (finished.phase !== 'completed') {
      throw new DowngradeRefusedError(
        `campaign ${name} ended ${finished.phase}; only a completed one has people to retry`,
      );
    }
    const campaigns = this.campaigns;
    const failedPages = async function* () {
      for (let offset = 0; ; offset += 1000) {
        const page = await campaigns.peopleEnded(finished.captureId, ['failed', 'expired'], offset, 1000);
        if (page.length === 0) return;
        yield page;
      }
    };
    const capture = await campaigns.capture(failedPages());
    const started = await this.startRun({ ...settings, name }, capture, undefined);
    return { ...started, users: capture.count };
  }

  private async startRun(
    request: Omit<StartCampaign, 'previewId' | 'users' | 'requireApproval' | 'approvalDeadlineMs'>,
    capture: { captureId: string; count: number },
    approval: CampaignInput['approval'],
  ): Promise<{ workflowId: string; runId: string }> {
    const workflowId = campaignWorkflowId(request.name);
    const { defaults } = this.options;
    const input: CampaignInput = {
      name: request.name,
      captureId: capture.captureId,
      userCount: capture.count,
      window: request.window ?? 500,
      downgrade: {
        deadlineMs: request.deadlineMs ?? defaults.deadlineMs,
        reminderIntervalMs: request.reminderIntervalMs ?? defaults.reminderIntervalMs,
        maxPrompts: request.maxPrompts ?? defaults.maxPrompts,
        consentRequestLifetimeMs: request.consentRequestLifetimeMs ?? defaults.consentRequestLifetimeMs,
        providerHint: request.providerHint,
        revokeWhenOpened: request.revokeWhenOpened || undefined,
      },
      approval,
      breaker: request.breaker === false ? undefined : (request.breaker ?? DEFAULT_BREAKER),
      historyEventBudget: request.historyEventBudget,
    };
    const handle = await this.temporal.workflow.start<typeof individualCampaign>('individualCampaign', {
      workflowId,
      taskQueue: this.options.taskQueue,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: new TypedSearchAttributes([
        { key: searchAttributes.kind, value: 'campaign' },
        { key: searchAttributes.state, value: input.approval ? 'awaiting_approval' : 'moving_users' },
      ]),
      staticSummary: `Campaign ${request.name}: ${capture.count} Individual users to Free/Busy`,
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  }

  /** Every user of the campaign with the outcome of their downgrade so far, a page at a time. */
  async report(
    name: string,
    page: { offset?: number; limit?: number } = {},
  ): Promise<{ name: string; phase: string; users: number; rows: CampaignReportRow[] }> {
    const status = await this.get(name);
    const rows = await this.campaigns.report(status.captureId, page.offset ?? 0, page.limit ?? 1000);
    return { name, phase: status.phase, users: status.userCount, rows };
  }

  private async previewedCapture(name: string, previewId: string) {
    const record = await this.campaigns.getPreview(previewId);
    if (!record) throw new PreviewNotFoundError(`no campaign preview ${previewId}`);
    if (record.name !== name)
      throw new DowngradeUsageError(`preview ${previewId} is of campaign ${record.name}, not ${name}`);
    return { captureId: record.captureId, count: (record.preview as CampaignPreview).users.count };
  }

  /** The users as captured: each refresh token replaced by its reference in the credential store. */
  private async *storeTokens(
    name: string,
    pages: Iterable<readonly CampaignPerson[]> | AsyncIterable<readonly CampaignPerson[]>,
  ): AsyncIterable<CampaignUser[]> {
    for await (const page of pages) {
      yield await Promise.all(
        page.map(async ({ sub, userId, refreshToken, email }) => ({
          sub,
          userId,
          email,
          credentialRef: refreshToken
            ? await this.store.saveCredentials({
                kind: 'account',
                sub,
                accessToken: '',
                refreshToken,
                label: `read/write authorization to revoke (campaign ${name})`,
              })
            : undefined,
        })),
      );
    }
  }
}
