import { z } from 'zod';
import { FREE_BUSY_PROVIDERS, TERMINAL_STATES, WAITING_STATES } from '../workflows/definitions.js';

const DOWNGRADE_STATES = [...WAITING_STATES, ...TERMINAL_STATES] as const;

/** An optional duration in milliseconds, at most a year. */
export const milliseconds = (what: string) =>
  z
    .int()
    .positive()
    .max(366 * 86_400_000)
    .optional()
    .describe(what);

/** `POST /v1/downgrades`: an Individual downgrade of one person's Cronofy account. */
export const StartDowngrade = z
  .strictObject({
    sub: z
      .string()
      .regex(/^acc_[A-Za-z0-9]{1,64}$/)
      .describe("The person's Cronofy account (`sub`, `acc_…`)"),
    refreshToken: z
      .string()
      .min(1)
      .max(2048)
      .optional()
      .describe(
        'Their current Read/Write refresh token, revoked by the downgrade; without it the account is revoked by `sub`',
      ),
    email: z
      .email()
      .optional()
      .describe('With email configured, the person receives their link, reminders and the confirmation'),
    userId: z.string().min(1).max(200).optional().describe("The application's own id for the person"),
    providerHint: z.enum(FREE_BUSY_PROVIDERS).optional(),
    deadlineMs: milliseconds('How long each prompt waits for the person'),
    reminderIntervalMs: milliseconds(
      'How often the application is reminded while the person has not answered',
    ),
    consentRequestLifetimeMs: milliseconds('How long one consent request works'),
    maxPrompts: z
      .int()
      .min(1)
      .max(10)
      .optional()
      .describe('How many times the person is asked, Read/Write answers counting'),
    revokeWhenOpened: z
      .boolean()
      .optional()
      .describe('Revoke only once the person opens the link; default: revoke at once'),
  })
  .meta({ id: 'StartDowngrade' });

/** The answer to a start: the link to send the person to, at once. */
export const StartedDowngrade = z
  .object({
    workflowId: z.string(),
    authorizationUrl: z.url().describe("Cronofy's consent request for the person"),
    authorizationExpiresAt: z.iso.datetime(),
    link: z
      .url()
      .optional()
      .describe("The service's own link, which outlives any one consent request: hand the person this"),
  })
  .meta({ id: 'StartedDowngrade' });

export const DowngradeStatus = z
  .object({
    workflowId: z.string(),
    sub: z.string(),
    userId: z.string().optional(),
    state: z.enum(DOWNGRADE_STATES),
    prompt: z.int(),
    maxPrompts: z.int(),
    authorizationUrl: z.string().optional(),
    authorizationExpiresAt: z.string().optional(),
    link: z.string().optional(),
    deadline: z.string().optional(),
    waitingSince: z.string().optional(),
    remindersSent: z.int(),
    providerName: z.string().optional(),
    reason: z.string().optional(),
  })
  .meta({ id: 'DowngradeStatus' });

/** The new Free/Busy credentials of a completed downgrade. */
export const NewCredentials = z
  .object({
    sub: z.string(),
    accessToken: z.string(),
    refreshToken: z.string().optional(),
    accessTokenExpiresAt: z.iso.datetime().optional(),
    scope: z.string().optional(),
    providerName: z.string().optional(),
    providerService: z.string().optional(),
    profileId: z.string().optional(),
    profileName: z.string().optional(),
  })
  .meta({ id: 'NewCredentials' });

export const DowngradeId = z.object({ workflowId: z.string().min(1).max(300) });

/** `GET /v1/downgrades`: newest first, optionally in one state, a page at a time. */
export const ListDowngrades = z.object({
  state: z.enum(DOWNGRADE_STATES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,4096}$/)
    .optional()
    .describe("The previous page's `nextCursor`"),
});

export const DowngradeList = z
  .object({
    downgrades: z.array(
      z.object({
        workflowId: z.string(),
        sub: z.string().optional(),
        state: z.string().optional(),
        startedAt: z.iso.datetime().optional(),
        closedAt: z.iso.datetime().optional(),
      }),
    ),
    nextCursor: z.string().optional().describe('Absent on the last page'),
  })
  .meta({ id: 'DowngradeList' });
