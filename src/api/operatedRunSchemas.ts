import { z } from 'zod';
import { FREE_BUSY_PROVIDERS } from '../workflows/definitions.js';
import { milliseconds } from './downgradeSchemas.js';

/** The two kinds of run that move many people, served by the same routes: a domain's downgrade, a campaign. */
export const RUN_KINDS = ['domains', 'campaigns'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

/** The most people one upload request carries. */
export const MAX_PAGE = 5_000;

const kind = z
  .enum(RUN_KINDS)
  .describe(
    "`domains`: an Enterprise Connect domain's downgrade; `campaigns`: a campaign of Individual downgrades",
  );

export const RunPath = z.object({
  kind,
  name: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/)
    .describe("The domain (`example.org`), or the campaign's name"),
});

export const PreviewPath = RunPath.extend({ previewId: z.string().min(1).max(100) });

export const UploadPath = z.object({ uploadId: z.string().min(1).max(100) });

/** `POST /v1/uploads`. */
export const CreateUpload = z.strictObject({ kind }).meta({ id: 'CreateUpload' });

export const Upload = z
  .object({
    uploadId: z.string(),
    kind,
    pages: z.int(),
    people: z.int().describe('People sent so far, before duplicates and malformed entries are dropped'),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Upload' });

/** A campaign's person: their Cronofy account and what revokes it. */
const CampaignPerson = z.strictObject({
  sub: z.string().min(1).max(200).describe('Their Cronofy account (`acc_…`)'),
  userId: z.string().min(1).max(200).optional(),
  refreshToken: z
    .string()
    .min(1)
    .max(2048)
    .optional()
    .describe(
      'Their Read/Write refresh token: stored encrypted, and revoked. Without it the account is revoked by sub',
    ),
  email: z.email().optional(),
});

/** `POST /v1/uploads/{uploadId}/pages`: the next page of people, in the order they are to be moved. */
export const UploadPage = z
  .union([
    z.strictObject({
      emails: z.array(z.string().max(320)).max(MAX_PAGE).describe("A domain's users, by email"),
    }),
    z.strictObject({ people: z.array(CampaignPerson).max(MAX_PAGE).describe("A campaign's people") }),
  ])
  .meta({ id: 'UploadPage' });

/** `POST /v1/{kind}/{name}/previews`. */
export const CreatePreview = z
  .strictObject({
    uploadId: z.string().min(1).max(100).describe('The people, uploaded page by page; read once'),
    serviceAccountRefreshToken: z
      .string()
      .min(1)
      .max(2048)
      .optional()
      .describe("Domains: the current service account's refresh token, stored encrypted"),
    serviceAccountSub: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe("Domains: the service account's `ser_…`"),
  })
  .meta({ id: 'CreatePreview' });

export const RunPreview = z
  .object({
    previewId: z.string(),
    kind,
    name: z.string(),
    createdAt: z.iso.datetime(),
    users: z.object({
      count: z.int(),
      duplicates: z.int(),
      malformed: z.int(),
      examples: z.object({ duplicates: z.array(z.string()), malformed: z.array(z.string()) }),
    }),
    serviceAccount: z
      .object({
        sub: z.string().optional(),
        providerName: z.string().optional(),
        domain: z.string().optional(),
        scope: z.string().optional(),
        delegatedScope: z.string().optional(),
        status: z.string().optional(),
      })
      .optional()
      .describe('Domains: what Cronofy reports of the current service account'),
    cronofyCalls: z
      .record(z.string(), z.int())
      .describe('The calls the run will make at Cronofy, by kind, and `total`'),
    estimatedSeconds: z.int().describe('At the configured rate limit, not counting the time people take'),
    cronofyCallsPerSecond: z.number(),
    warnings: z.array(z.string()),
  })
  .meta({ id: 'RunPreview' });

/** `POST /v1/{kind}/{name}/start`. */
export const StartRun = z
  .strictObject({
    previewId: z
      .string()
      .min(1)
      .max(100)
      .describe('The preview whose people and service account the run takes'),
    requireApproval: z
      .boolean()
      .default(true)
      .describe(
        'Wait in `awaiting_approval` until an operator approves the preview (default); false starts at once',
      ),
    approvalDeadlineMs: milliseconds('How long the run waits for approval before it ends `expired`'),
    window: z.int().min(1).max(5_000).optional().describe("People's downgrades running at once"),
    deadlineMs: milliseconds('How long each prompt waits for its person (or the administrator)'),
    reminderIntervalMs: milliseconds('How often the application is reminded while no one has answered'),
    maxPrompts: z.int().min(1).max(10).optional(),
    adminEmail: z
      .email()
      .optional()
      .describe("Domains: the administrator's address, for their link and reminders"),
    providerHint: z.enum(FREE_BUSY_PROVIDERS).optional().describe('Campaigns: the provider to suggest'),
  })
  .meta({ id: 'StartRun' });

export const StartedRun = z
  .object({
    workflowId: z.string(),
    runId: z.string(),
    previewId: z.string().optional(),
    users: z.int().optional().describe('retry-failed: the people asked again'),
  })
  .meta({ id: 'StartedRun' });

/** An operator's decision: who takes it, and why (kept in the run's history). */
export const Decision = z
  .strictObject({
    by: z.string().min(1).max(200).describe('Who decides: an operator, as the audit trail names them'),
    reason: z.string().max(1000).optional(),
  })
  .meta({ id: 'Decision' });

export const Approval = Decision.extend({
  previewId: z
    .string()
    .min(1)
    .max(100)
    .describe('The preview the run was started from: what the operator read'),
}).meta({ id: 'Approval' });

export const RunStatus = z
  .object({
    kind,
    name: z.string(),
    workflowId: z.string(),
    phase: z.string(),
    userCount: z.int(),
    started: z.int(),
    inFlight: z.int(),
    counts: z.record(z.string(), z.int()).describe("People by their downgrade's final state"),
    runs: z.int().describe('How many Temporal runs the run has taken (continue-as-new)'),
    reason: z.string().optional(),
    approval: z
      .object({
        previewId: z.string(),
        expiresAt: z.string(),
        decidedBy: z.string().optional(),
        decidedAt: z.string().optional(),
      })
      .optional(),
    paused: z.object({ by: z.string(), at: z.string(), reason: z.string().optional() }).optional(),
    administrator: z
      .object({
        prompt: z.int(),
        authorizationUrl: z.string().optional(),
        authorizationExpiresAt: z.string().optional(),
        waitingSince: z.string().optional(),
        providerName: z.string().optional(),
      })
      .optional()
      .describe("Domains: the administrator's re-authorization"),
  })
  .meta({ id: 'RunStatus' });

/** `GET /v1/{kind}/{name}/report`. */
export const ReportQuery = z.object({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE).default(1000),
  cursor: z
    .string()
    .regex(/^[0-9]{1,9}$/)
    .optional()
    .describe("The previous page's `nextCursor`"),
});

export const Report = z
  .object({
    kind,
    name: z.string(),
    phase: z.string(),
    users: z.int(),
    rows: z.array(
      z.object({
        position: z.int(),
        email: z.string().optional().describe('Domains'),
        sub: z.string().optional().describe('Campaigns'),
        userId: z.string().optional().describe('Campaigns'),
        state: z.string().describe('The final state, or `pending` while the person is on their way'),
        reason: z.string().optional(),
        providerName: z.string().optional(),
        recordedAt: z.string().optional(),
      }),
    ),
    nextCursor: z.string().optional().describe('Absent on the last page'),
  })
  .meta({ id: 'Report' });
