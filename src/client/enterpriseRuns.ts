import type { Client } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { searchAttributes } from '../workflows/definitions.js';
import {
  domainUpdates,
  enterpriseDowngradeId,
  getEnterpriseStatus,
  type BreakerThresholds,
  type EnterpriseDowngradeInput,
  type EnterpriseStatus,
} from '../workflows/enterpriseDefinitions.js';
import type { enterpriseDowngrade } from '../workflows/enterpriseDowngrade.js';
import { DowngradeUsageError } from './errors.js';
import type { DowngradeDefaults } from './individualClient.js';
import { OperatedRuns } from './operatedRuns.js';
import { DEFAULT_BREAKER } from './workflowCalls.js';

export interface EnterpriseDefaults {
  userDeadlineMs: number;
  maxUserRequests: number;
  window: number;
}

/** Every user connected through the service account, inline or page by page. */
export type UserPages = Iterable<readonly string[]> | AsyncIterable<readonly string[]>;

/** How a domain's run goes, whatever its users and service account. */
export interface EnterpriseRunSettings {
  domain: string;
  /** The administrator's address: with email configured they receive their link and reminders. */
  adminEmail?: string;
  deadlineMs?: number;
  reminderIntervalMs?: number;
  maxPrompts?: number;
  userDeadlineMs?: number;
  maxUserRequests?: number;
  window?: number;
  historyEventBudget?: number;
  /** When the domain pauses itself (default 20 failures that are at least 40 % of the finished users); false: never. */
  breaker?: BreakerThresholds | false;
}

/** A small domain started at once, its users travelling in the workflow's input: no preview, no approval. */
export interface StartInlineEnterpriseDowngrade extends EnterpriseRunSettings {
  users: UserPages;
  /** The current service account's `ser_…` sub, revoked by sub. */
  serviceAccountSub: string;
}

export interface EnterpriseRunsOptions {
  temporal: Client;
  taskQueue: string;
  defaults: DowngradeDefaults;
  enterpriseDefaults?: EnterpriseDefaults;
  /** The Temporal UI operators use: a domain's current details link to its users' runs there. */
  temporalUiUrl?: string;
}

/** Users that may travel inline in a workflow's input (well under Temporal's 2 MB payload limit). */
const MAX_INLINE_USERS = 5_000;

const ENTERPRISE_DEFAULTS: EnterpriseDefaults = {
  userDeadlineMs: 3_600_000,
  maxUserRequests: 3,
  window: 500,
};

/**
 * Enterprise Connect downgrades through Temporal alone, by domain: follow, operate and cancel any domain's run, and
 * start a small one at once. EnterpriseClient adds what needs the service's database: previews, approval of a
 * preview, domains of any size, outcomes and reports.
 */
export class EnterpriseRuns extends OperatedRuns<EnterpriseStatus> {
  protected readonly enterpriseDefaults: EnterpriseDefaults;

  constructor(protected readonly options: EnterpriseRunsOptions) {
    super(options.temporal, {
      workflowId: enterpriseDowngradeId,
      subject: (domain) => `the downgrade of ${domain}`,
      status: getEnterpriseStatus,
      updates: domainUpdates,
    });
    this.enterpriseDefaults = options.enterpriseDefaults ?? ENTERPRISE_DEFAULTS;
  }

  /** Revokes at once; starting the same domain again while it runs returns the running one. */
  async startInline(request: StartInlineEnterpriseDowngrade): Promise<{ workflowId: string; runId: string }> {
    const running = await this.running(request.domain);
    if (running) return { workflowId: enterpriseDowngradeId(request.domain), runId: running };
    const inlineUsers: string[] = [];
    for await (const page of request.users) {
      inlineUsers.push(...page);
      if (inlineUsers.length > MAX_INLINE_USERS) {
        throw new DowngradeUsageError(
          `more than ${MAX_INLINE_USERS} users: start the domain with an EnterpriseClient on the service's PostgreSQL`,
        );
      }
    }
    return this.startRun(
      this.runInput(request, { inlineUsers, serviceAccountSub: request.serviceAccountSub }),
    );
  }

  /** A run's input: the request's settings over the defaults, and where its users and service account are. */
  protected runInput(
    settings: EnterpriseRunSettings,
    from: Pick<
      EnterpriseDowngradeInput,
      'captureId' | 'userCount' | 'inlineUsers' | 'serviceAccountRef' | 'serviceAccountSub' | 'approval'
    >,
  ): EnterpriseDowngradeInput {
    const { enterpriseDefaults } = this;
    const { defaults } = this.options;
    return {
      domain: settings.domain,
      ...from,
      adminEmail: settings.adminEmail,
      deadlineMs: settings.deadlineMs ?? defaults.deadlineMs,
      reminderIntervalMs: settings.reminderIntervalMs ?? defaults.reminderIntervalMs,
      maxPrompts: settings.maxPrompts ?? defaults.maxPrompts,
      userDeadlineMs: settings.userDeadlineMs ?? enterpriseDefaults.userDeadlineMs,
      maxUserRequests: settings.maxUserRequests ?? enterpriseDefaults.maxUserRequests,
      window: settings.window ?? enterpriseDefaults.window,
      historyEventBudget: settings.historyEventBudget,
      breaker: settings.breaker === false ? undefined : (settings.breaker ?? DEFAULT_BREAKER),
    };
  }

  protected async startRun(input: EnterpriseDowngradeInput): Promise<{ workflowId: string; runId: string }> {
    const workflowId = enterpriseDowngradeId(input.domain);
    const handle = await this.temporal.workflow.start<typeof enterpriseDowngrade>('enterpriseDowngrade', {
      workflowId,
      taskQueue: this.options.taskQueue,
      args: [{ ...input, temporalUiUrl: input.temporalUiUrl ?? this.options.temporalUiUrl }],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: new TypedSearchAttributes([
        { key: searchAttributes.kind, value: 'enterprise' },
        {
          key: searchAttributes.state,
          value: input.progress ? 'moving_users' : input.approval ? 'awaiting_approval' : 'revoking',
        },
        { key: searchAttributes.domain, value: input.domain },
      ]),
      staticSummary: `Downgrade domain ${input.domain} (${input.userCount ?? input.inlineUsers?.length} users) to Free/Busy`,
      staticDetails: `Enterprise Connect. ${input.progress ? 'Retrying users with the verified service account.' : 'Revoke, administrator re-authorization, then every user.'} Window ${input.window}.`,
    });
    return { workflowId, runId: handle.firstExecutionRunId };
  }
}
