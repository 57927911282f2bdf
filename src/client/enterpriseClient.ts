import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { rootCause } from '@temporalio/common';
import type { CredentialStore } from '../store/credentialStore.js';
import type { EnterpriseUsers, ReportRow, UserOutcome } from '../store/enterpriseUsers.js';
import { enterpriseDowngradeId } from '../workflows/enterpriseDefinitions.js';
import { operatedRunHasEnded } from '../workflows/endings.js';
import type { inspectServiceAccount } from '../workflows/serviceAccountInspection.js';
import { buildPreview, type EnterprisePreview } from './enterprisePreview.js';
import {
  EnterpriseRuns,
  type EnterpriseDefaults,
  type EnterpriseRunSettings,
  type EnterpriseRunsOptions,
  type UserPages,
} from './enterpriseRuns.js';
import { DowngradeRefusedError, DowngradeUsageError, PreviewNotFoundError } from './errors.js';
import { DEFAULT_APPROVAL_DEADLINE_MS } from './workflowCalls.js';

/** The current service account: its refresh token (stored encrypted) or its `ser_…` sub. */
export interface ServiceAccount {
  serviceAccountRefreshToken?: string;
  serviceAccountSub?: string;
}

export interface PreviewEnterpriseDowngrade extends ServiceAccount {
  domain: string;
  /** Every user connected through the service account, page by page. */
  users: UserPages;
}

export interface StartEnterpriseDowngrade extends EnterpriseRunSettings, ServiceAccount {
  /**
   * Start from this preview: its users and service account. Without it, and unless `requireApproval` is false,
   * the client previews first and the run waits for an operator to approve that preview.
   */
  previewId?: string;
  /** Every user connected through the service account (captured before revoking). */
  users?: UserPages;
  /** Wait in `awaiting_approval` until an operator approves (default true); false revokes at once. */
  requireApproval?: boolean;
  /** How long a run waits for approval before it ends `expired` (default 7 days). */
  approvalDeadlineMs?: number;
}

export interface EnterpriseClientOptions extends EnterpriseRunsOptions {
  /** Where service accounts' tokens are handed over: the service's database. */
  store: CredentialStore;
  /** Where users are captured, previews kept and outcomes recorded: the service's database. */
  users: EnterpriseUsers;
  /** The worker's limit (CRONOFY_CALLS_PER_SECOND), for the time a preview estimates; default 8. */
  cronofyCallsPerSecond?: number;
}

/** Domains of any size on the service's database: previews and their approval, outcomes, reports, retries. */
export class EnterpriseClient extends EnterpriseRuns {
  private readonly store: CredentialStore;
  private readonly users: EnterpriseUsers;
  private readonly cronofyCallsPerSecond: number;

  constructor(options: EnterpriseClientOptions) {
    super(options);
    this.store = options.store;
    this.users = options.users;
    this.cronofyCallsPerSecond = options.cronofyCallsPerSecond ?? 8;
  }

  /**
   * Captures the domain's users and reads its service account without changing anything at Cronofy: what the
   * downgrade will do, under an id an operator approves. The users are kept as captured; a later change to the
   * list needs a new preview.
   */
  async preview(request: PreviewEnterpriseDowngrade): Promise<EnterprisePreview> {
    const serviceAccountRef = await this.saveServiceAccount(request);
    const capture = await this.users.capture(request.users);
    const previewId = `pv_${randomBytes(12).toString('base64url')}`;
    const inspected = serviceAccountRef
      ? await this.inspect(request.domain, previewId, serviceAccountRef)
      : undefined;
    const preview = buildPreview({
      previewId,
      domain: request.domain,
      capture,
      serviceAccount: inspected && { ...inspected, sub: request.serviceAccountSub },
      running: await this.running(request.domain),
      cronofyCallsPerSecond: this.cronofyCallsPerSecond,
      now: new Date(),
    });
    await this.users.savePreview({
      previewId,
      domain: request.domain,
      captureId: capture.captureId,
      serviceAccountRef,
      serviceAccountSub: request.serviceAccountSub,
      preview,
    });
    return preview;
  }

  /** What Cronofy says of the service account; one it refuses to read is the caller's to mend, not a failure. */
  private async inspect(domain: string, previewId: string, serviceAccountRef: string) {
    try {
      return await this.temporal.workflow.execute<typeof inspectServiceAccount>('inspectServiceAccount', {
        workflowId: `preview-${domain}-${previewId}`,
        taskQueue: this.options.taskQueue,
        args: [{ serviceAccountRef }],
        workflowExecutionTimeout: '5m',
        staticSummary: `Preview the downgrade of ${domain}: read its service account`,
      });
    } catch (error) {
      // Cronofy's refusal (a revoked or unknown token, say) fails the workflow at once, with Cronofy's answer.
      if (error instanceof WorkflowFailedError) {
        throw new DowngradeUsageError(`the service account could not be read: ${rootCause(error.cause)}`);
      }
      throw error;
    }
  }

  async getPreview(previewId: string): Promise<EnterprisePreview> {
    return (await this.previewRecord(previewId)).preview as EnterprisePreview;
  }

  /**
   * Starts a domain's downgrade; starting the same domain again while it runs returns the running one. By default
   * it first previews (or takes `previewId`) and the run revokes nothing until an operator approves that preview
   * (`approve`); with `requireApproval: false` it captures the users and revokes at once.
   */
  async start(
    request: StartEnterpriseDowngrade,
  ): Promise<{ workflowId: string; runId: string; previewId?: string }> {
    const running = await this.running(request.domain);
    if (running) return { workflowId: enterpriseDowngradeId(request.domain), runId: running };
    if (!request.previewId && !request.serviceAccountRefreshToken && !request.serviceAccountSub) {
      throw new DowngradeUsageError(
        'name the service account to revoke: serviceAccountRefreshToken or serviceAccountSub',
      );
    }
    const requireApproval = request.requireApproval ?? true;
    const previewId =
      request.previewId ??
      (requireApproval
        ? (await this.preview({ ...request, users: request.users ?? [] })).previewId
        : undefined);
    const from = previewId
      ? await this.previewedRun(request.domain, previewId)
      : await this.capturedRun(request);
    const approval =
      previewId && requireApproval
        ? { previewId, deadlineMs: request.approvalDeadlineMs ?? DEFAULT_APPROVAL_DEADLINE_MS }
        : undefined;
    const started = await this.startRun(this.runInput(request, { ...from, approval }));
    return { ...started, previewId };
  }

  /** Per-user outcomes, a page at a time (filter by state, e.g. `['failed', 'expired']`). */
  async userOutcomes(
    domain: string,
    options: { states?: string[]; offset?: number; limit?: number } = {},
  ): Promise<UserOutcome[]> {
    const { captureId } = await this.get(domain);
    return this.users.outcomes(captureId, options);
  }

  /**
   * Asks again for the users of a completed domain downgrade that failed or expired, with the service account it
   * already verified: a new run over just those users. A domain still running is refused, not waited for.
   */
  async retryFailed(
    domain: string,
    overrides: Partial<EnterpriseDefaults> = {},
  ): Promise<{ workflowId: string; runId: string; users: number }> {
    const finished = await this.get(domain);
    if (!operatedRunHasEnded(finished.phase)) {
      throw new DowngradeRefusedError(
        `the downgrade of ${domain} is still ${finished.phase}; retry its failed users once it has completed`,
      );
    }
    if (finished.phase !== 'completed' || !finished.serviceAccountRef || !finished.providerName) {
      throw new DowngradeRefusedError(
        `the downgrade of ${domain} ended ${finished.phase}; only a completed one has users to retry`,
      );
    }
    const users = this.users;
    const failedPages = async function* () {
      for (let offset = 0; ; offset += 1000) {
        const page = await users.outcomes(finished.captureId, {
          states: ['failed', 'expired'],
          offset,
          limit: 1000,
        });
        if (page.length === 0) return;
        yield page.map((outcome) => outcome.email);
      }
    };
    const { captureId, count } = await users.capture(failedPages());
    const started = await this.startRun({
      ...this.runInput({ domain, ...overrides }, { captureId, userCount: count }),
      progress: {
        serviceAccountRef: finished.serviceAccountRef,
        providerName: finished.providerName,
        nextPosition: 0,
        counts: {},
        runs: 0,
      },
    });
    return { ...started, users: count };
  }

  /** Every captured user of the domain's latest run with their outcome so far, a page at a time, in capture order. */
  async report(
    domain: string,
    page: { offset?: number; limit?: number } = {},
  ): Promise<{ domain: string; captureId: string; phase: string; users: number; rows: ReportRow[] }> {
    const status = await this.get(domain);
    const rows = await this.users.report(status.captureId, page.offset ?? 0, page.limit ?? 1000);
    return { domain, captureId: status.captureId, phase: status.phase, users: status.userCount, rows };
  }

  private async previewRecord(previewId: string) {
    const record = await this.users.getPreview(previewId);
    if (!record) throw new PreviewNotFoundError(`no preview ${previewId}`);
    return record;
  }

  /** The users and service account a preview bound. */
  private async previewedRun(domain: string, previewId: string) {
    const record = await this.previewRecord(previewId);
    if (record.domain !== domain) {
      throw new DowngradeUsageError(`preview ${previewId} is of ${record.domain}, not ${domain}`);
    }
    return {
      captureId: record.captureId,
      userCount: (record.preview as EnterprisePreview).users.count,
      serviceAccountRef: record.serviceAccountRef,
      serviceAccountSub: record.serviceAccountSub,
    };
  }

  /** The users captured page by page (any size), and the service account's token handed over. */
  private async capturedRun(request: StartEnterpriseDowngrade) {
    const { captureId, count } = await this.users.capture(request.users ?? []);
    const serviceAccountRef = await this.saveServiceAccount(request);
    return { captureId, userCount: count, serviceAccountRef, serviceAccountSub: request.serviceAccountSub };
  }

  private async saveServiceAccount(
    request: ServiceAccount & { domain: string },
  ): Promise<string | undefined> {
    if (!request.serviceAccountRefreshToken) return undefined;
    return this.store.saveCredentials({
      kind: 'service_account',
      sub: request.serviceAccountSub ?? 'unknown',
      accessToken: '',
      refreshToken: request.serviceAccountRefreshToken,
      label: `service account of ${request.domain} to revoke`,
    });
  }
}
