/**
 * The contract between the individual downgrade workflow and everyone who talks to it: the typed client, the
 * callback server, the worker and operators. Declared once and imported by each side.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export const FREE_BUSY_PROVIDERS = ['google_free_busy', 'ms_graph_free_busy'] as const;
export type FreeBusyProvider = (typeof FREE_BUSY_PROVIDERS)[number];
/** Cronofy reports `cronofy` as the provider when the person chose "No Access". */
export const NO_ACCESS_PROVIDER = 'cronofy';
/** The scope that lets a connection publish free/busy only: asked of people, and delegated by administrators. */
export const FREE_BUSY_SCOPE = 'free_busy_write';

export const searchAttributes = {
  kind: defineSearchAttributeKey('DowngradeKind', SearchAttributeType.KEYWORD),
  state: defineSearchAttributeKey('DowngradeState', SearchAttributeType.KEYWORD),
  sub: defineSearchAttributeKey('CronofySub', SearchAttributeType.KEYWORD),
  domain: defineSearchAttributeKey('CronofyDomain', SearchAttributeType.KEYWORD),
  provider: defineSearchAttributeKey('CronofyProvider', SearchAttributeType.KEYWORD),
};

/** `--search-attribute` arguments for `temporal server start-dev`, so a dev server knows them from the start. */
export const searchAttributeRegistrations = Object.values(searchAttributes).map(
  (key) => `${key.name}=${key.type === SearchAttributeType.KEYWORD ? 'Keyword' : key.type}`,
);

/** The task queue of activities that call Cronofy, rate limited by the server for all workers together. */
export function cronofyTaskQueue(taskQueue: string): string {
  return `${taskQueue}-cronofy`;
}

const INDIVIDUAL_ID_PREFIX = 'downgrade-individual-';

export function individualDowngradeId(sub: string): string {
  return `${INDIVIDUAL_ID_PREFIX}${sub}`;
}

/** Whether a workflow id is an Individual downgrade's (and not a domain's, a campaign's or a preview's). */
export function isIndividualDowngradeId(workflowId: string): boolean {
  return workflowId.startsWith(INDIVIDUAL_ID_PREFIX);
}

export interface IndividualDowngradeInput {
  /** The Cronofy account to downgrade (`acc_…`). */
  sub: string;
  /** The application's own id for the user, echoed in webhooks and status. */
  userId?: string;
  /** Credential-store reference of the current Read/Write authorization; without it, revoke by `sub`. */
  credentialRef?: string;
  /** Skips Cronofy's provider picker on the consent page. */
  providerHint?: FreeBusyProvider;
  /** How long each prompt waits for the person, in ms. */
  deadlineMs: number;
  /** How often the application is reminded while a prompt is waiting, in ms. */
  reminderIntervalMs: number;
  /** How many times the person is asked before the downgrade gives up on Read/Write choices. */
  maxPrompts: number;
  /**
   * How long one consent request (Cronofy's URL and its `state`) works, in ms; by default as long as the prompt
   * waits. Shorter, a URL handed on works for less time, and the service's link asks afresh after it.
   */
  consentRequestLifetimeMs?: number;
  /**
   * Revoke only when the person opens the link (the service's own page), then send them on to Cronofy's consent
   * page: someone who never opens it keeps their connection. Absent: revoke at start.
   */
  revokeWhenOpened?: boolean;
  /** The person's address: with email configured they receive the link, reminders and the confirmation. */
  email?: string;
  /** Set for a user of an Individual campaign: where the downgrade records its outcome for the campaign. */
  campaign?: { captureId: string; position: number };
  /** The `DowngradeState` search attribute the run is started with (`stateAtStart`). */
  stateAtStart?: DowngradeState;
}

/** Where an Individual downgrade starts: waiting for the person to open the link, or revoking at once. */
export function stateAtStart(input: Pick<IndividualDowngradeInput, 'revokeWhenOpened'>): DowngradeState {
  return input.revokeWhenOpened ? 'awaiting_link_open' : 'revoking';
}

/** Where a person's downgrade can be while it runs. */
export const WAITING_STATES = [
  'awaiting_link_open',
  'revoking',
  'awaiting_reauthorization',
  'verifying',
] as const;
/** Every way a person's downgrade can end. */
export const TERMINAL_STATES = [
  'completed',
  'denied',
  'expired',
  'read_write_kept',
  'no_access',
  'other_account',
  'link_not_opened',
  'cancelled',
  'failed',
] as const;
export type DowngradeState = (typeof WAITING_STATES)[number] | (typeof TERMINAL_STATES)[number];

/** Whether a person's downgrade has ended in this state. */
export function isTerminalState(state: string): state is (typeof TERMINAL_STATES)[number] {
  return (TERMINAL_STATES as readonly string[]).includes(state);
}

export interface DowngradeStatus {
  workflowId: string;
  sub: string;
  userId?: string;
  state: DowngradeState;
  /** 1 for the first prompt, counting re-prompts after a Read/Write choice. */
  prompt: number;
  maxPrompts: number;
  /** Present while waiting: Cronofy's consent request for the person, and when it stops working. */
  authorizationUrl?: string;
  authorizationExpiresAt?: string;
  /**
   * Present while waiting for the person: the service's own link, the one to hand them. It works until `deadline`
   * and always leads to the current consent request, asking afresh when the last one expired.
   */
  link?: string;
  /** When this prompt stops waiting (the downgrade then ends `expired`). */
  deadline?: string;
  waitingSince?: string;
  remindersSent: number;
  /** The provider Cronofy reported for the most recent authorization. */
  providerName?: string;
  /** Credential-store reference of the new Free/Busy authorization, once completed. */
  credentialRef?: string;
  reason?: string;
}

export type DowngradeResult = DowngradeStatus & { state: (typeof TERMINAL_STATES)[number] };

/** What the callback server learned from the person's browser redirect. No code in here: only a reference. */
export type ReauthorizationCallback = { prompt: number; nonce: string } & (
  { codeRef: string } | { error: string; errorDescription?: string }
);

export const reauthorizationCallback = defineSignal<[ReauthorizationCallback]>('reauthorizationCallback');
export const getStatus = defineQuery<DowngradeStatus>('getStatus');
/**
 * The person opened the link of a downgrade that revokes when opened (its nonce proves which): it revokes, and
 * answers with Cronofy's consent URL to send the browser on to. Opening it again while that prompt waits answers
 * the same URL.
 */
export const openLink = defineUpdate<{ authorizationUrl: string }, [{ nonce: string }]>('openLink');
/**
 * Answers once the downgrade has a link for the person (Cronofy's consent page, or with `revokeWhenOpened` the
 * service's own link), with it and when it expires; refused when the downgrade ended first. Sent with the start
 * (update-with-start), it hands a backend the link in the same call.
 */
export const consentLink = defineUpdate<{
  authorizationUrl: string;
  authorizationExpiresAt: string;
  /** The service's own link to the current request (DowngradeStatus.link): the one to hand the person. */
  link?: string;
}>('consentLink');

/**
 * A consent request with less than this left is renewed when the person opens the service's link: they need some
 * time on Cronofy's consent page, and a request that expires while they are there ends in an error page.
 */
export const CONSENT_REQUEST_RENEWAL_MARGIN_MS = 60_000;

/**
 * The person opened the service's link after their consent request stopped working (its `state` expired) while the
 * downgrade still waits: a fresh request, as a new prompt under the same deadline, and its URL. Refused while the
 * request still works (for longer than the renewal margin), when the downgrade does not wait for the person, or when no prompt is left.
 */
export const renewConsentRequest = defineUpdate<{ authorizationUrl: string }>('renewConsentRequest');

/** Events the application receives on its (optional) signed webhook. */
export type ApplicationEvent =
  | { type: 'authorization_required' | 'reminder'; status: DowngradeStatus }
  | { type: 'finished'; status: DowngradeStatus };
