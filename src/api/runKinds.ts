/**
 * A domain's downgrade and a campaign as the operated-run routes see them: one shape over EnterpriseClient and
 * CampaignClient, so that the routes are written once for both kinds.
 */
import type { z } from 'zod';
import type { CampaignClient, CampaignPerson } from '../client/campaignClient.js';
import type { EnterpriseClient } from '../client/enterpriseClient.js';
import { PreviewNotFoundError } from '../client/errors.js';
import type { OperatedRuns } from '../client/operatedRuns.js';
import type { OperatorDecision } from '../workflows/operatedRunDefinitions.js';
import { campaignReportCsv, reportCsv } from '../reportCsv.js';
import type { CampaignStatus } from '../workflows/campaignDefinitions.js';
import type { EnterpriseStatus } from '../workflows/enterpriseDefinitions.js';
import type { Report, RunKind, RunPreview, RunStatus, StartedRun, StartRun } from './operatedRunSchemas.js';

type Status = z.infer<typeof RunStatus>;
type Preview = z.infer<typeof RunPreview>;
type Row = z.infer<typeof Report>['rows'][number];

export interface RunKindService {
  /** The field of an upload page that carries this kind's people. */
  pageField: 'emails' | 'people';
  get(name: string): Promise<Status>;
  approve(name: string, decision: OperatorDecision & { previewId: string }): Promise<Status>;
  reject(name: string, decision: OperatorDecision): Promise<Status>;
  pause(name: string, decision: OperatorDecision): Promise<Status>;
  resume(name: string, decision: OperatorDecision): Promise<Status>;
  cancel(name: string): Promise<void>;
  preview(
    name: string,
    pages: AsyncIterable<unknown[]>,
    serviceAccount: { serviceAccountRefreshToken?: string; serviceAccountSub?: string },
  ): Promise<Preview>;
  /** The preview, if it is one of this run's. */
  getPreview(name: string, previewId: string): Promise<Preview>;
  start(name: string, request: z.output<typeof StartRun>): Promise<z.infer<typeof StartedRun>>;
  retryFailed(name: string): Promise<z.infer<typeof StartedRun>>;
  report(name: string, offset: number, limit: number): Promise<{ phase: string; users: number; rows: Row[] }>;
  csv(rows: Row[], header: boolean): string;
}

/** The operators' updates, the same calls on either kind. */
function operated<S extends { phase: string }>(
  runs: OperatedRuns<S>,
  toStatus: (status: S) => Status,
): Pick<RunKindService, 'get' | 'approve' | 'reject' | 'pause' | 'resume' | 'cancel'> {
  return {
    get: async (name) => toStatus(await runs.get(name)),
    approve: async (name, decision) => toStatus(await runs.approve(name, decision)),
    reject: async (name, decision) => toStatus(await runs.reject(name, decision)),
    pause: async (name, decision) => toStatus(await runs.pause(name, decision)),
    resume: async (name, decision) => toStatus(await runs.resume(name, decision)),
    cancel: (name) => runs.cancel(name),
  };
}

function commonStatus(kind: RunKind, name: string, status: EnterpriseStatus | CampaignStatus): Status {
  const { workflowId, phase, userCount, started, inFlight, counts, runs, reason, approval, paused } = status;
  return {
    kind,
    name,
    workflowId,
    phase,
    userCount,
    started,
    inFlight,
    counts: counts as Record<string, number>,
    runs,
    reason,
    approval,
    paused,
  };
}

function domainStatus(status: EnterpriseStatus): Status {
  const { prompt, authorizationUrl, authorizationExpiresAt, waitingSince, providerName } = status;
  return {
    ...commonStatus('domains', status.domain, status),
    administrator: { prompt, authorizationUrl, authorizationExpiresAt, waitingSince, providerName },
  };
}

function reportRow(row: Row): Row {
  const { position, email, sub, userId, state, reason, providerName, recordedAt } = row;
  return { position, email, sub, userId, state, reason, providerName, recordedAt };
}

export function runKinds(
  domains: EnterpriseClient,
  campaigns: CampaignClient,
): Record<RunKind, RunKindService> {
  return {
    domains: {
      pageField: 'emails',
      ...operated(domains, domainStatus),
      async preview(domain, pages, serviceAccount) {
        const preview = await domains.preview({
          domain,
          users: pages as AsyncIterable<string[]>,
          ...serviceAccount,
        });
        return { ...preview, kind: 'domains', name: domain };
      },
      async getPreview(domain, previewId) {
        const preview = await domains.getPreview(previewId);
        if (preview.domain !== domain) throw new PreviewNotFoundError(`no preview ${previewId} of ${domain}`);
        return { ...preview, kind: 'domains', name: domain };
      },
      start: (domain, request) => domains.start({ domain, ...request }),
      retryFailed: (domain) => domains.retryFailed(domain),
      async report(domain, offset, limit) {
        const { phase, users, rows } = await domains.report(domain, { offset, limit });
        return { phase, users, rows: rows.map(reportRow) };
      },
      csv: (rows, header) => reportCsv(rows as Parameters<typeof reportCsv>[0], { header }),
    },
    campaigns: {
      pageField: 'people',
      ...operated(campaigns, (status) => commonStatus('campaigns', status.name, status)),
      async preview(name, pages) {
        const preview = await campaigns.preview({ name, users: pages as AsyncIterable<CampaignPerson[]> });
        return { ...preview, kind: 'campaigns' };
      },
      async getPreview(name, previewId) {
        const preview = await campaigns.getPreview(previewId);
        if (preview.name !== name)
          throw new PreviewNotFoundError(`no preview ${previewId} of campaign ${name}`);
        return { ...preview, kind: 'campaigns' };
      },
      start: (name, { adminEmail: _unused, ...request }) => campaigns.start({ name, ...request }),
      retryFailed: (name) => campaigns.retryFailed(name),
      async report(name, offset, limit) {
        const { phase, users, rows } = await campaigns.report(name, { offset, limit });
        return { phase, users, rows: rows.map(reportRow) };
      },
      csv: (rows, header) => campaignReportCsv(rows as Parameters<typeof campaignReportCsv>[0], { header }),
    },
  };
}
