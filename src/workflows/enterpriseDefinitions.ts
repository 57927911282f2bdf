/** The contract of Enterprise Connect downgrades: the parent per domain and one child per user. */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { operatorUpdates } from './operatedRunDefinitions.js';

export function enterpriseDowngradeId(domain: string): string {
  return `downgrade-enterprise-${domain}`;
}

/**
 * A user's workflow is named by the domain's, the capture and the user's place in it (ids carry no email): one per
 * user and capture, so a retried start finds the workflow it started, and retrying a domain's failed users (a new
 * capture) starts new ones.
 */
export function enterpriseUserDowngradeId(
  parentWorkflowId: string,
  captureId: string,
  position: number,
): string {
  return `${parentWorkflowId}-${captureId}-user-${position}`;
}

/** Where a domain's downgrade can be while it runs. */
export const ENTERPRISE_RUNNING_PHASES = [
  'awaiting_approval',
  'revoking',
  'awaiting_admin',
  'verifying_admin',
  'moving_users',
  'paused',
] as const;
/** Every way a domain's downgrade can end: the administrator's answers end it as a person's end theirs. */
export const ENTERPRISE_ENDINGS = [
  'completed',
  'rejected',
  'denied',
  'expired',
  'read_write_kept',
  'no_access',
  'other_account',
  'cancelled',
  'failed',
] as const;
export type EnterprisePhase =
  (typeof ENTERPRISE_RUNNING_PHASES)[number] | (typeof ENTERPRISE_ENDINGS)[number];

export type UserState =
  'awaiting_user_access' | 'verifying' | 'completed' | 'failed' | 'expired' | 'cancelled';
export type UserOutcomeState = Exclude<UserState, 'awaiting_user_access' | 'verifying'>;

/** Where the users phase stands; carried across continue-as-new. */
export interface UsersProgress {
  serviceAccountRef: string;
  providerName: string;
  nextPosition: number;
  counts: Partial<Record<UserOutcomeState, number>>;
  runs: number;
  /** Absent in runs before operators could pause a domain. */
  control?: DomainControlState;
  /** Who approved the run, shown by every later run of it. */
  approval?: EnterpriseStatus['approval'];
}

/**
 * The domain pauses itself when at least `minFailures` users failed since its users phase began (or last resumed)
 * and they are at least `failureRatio` of the users finished since: 20 and 0.4 trip on 20 refusals among the
 * first 50 users, the sign of an administrator who granted the wrong delegated scope.
 */
export interface BreakerThresholds {
  minFailures: number;
  failureRatio: number;
}

export interface Pause {
  by: string;
  at: string;
  reason?: string;
}

export interface DomainControlState {
  paused?: Pause;
  since: { failed: number; finished: number };
}

export interface Approval {
  previewId: string;
  /** The run ends `expired` when nobody decides within this long. */
  deadlineMs: number;
}

export interface EnterpriseDowngradeInput {
  domain: string;
  /** The users, captured before revoking into the credential store (`EnterpriseUsers`) by the caller... */
  captureId?: string;
  userCount?: number;
  /** ...or given inline (small domains), for the workflow to capture as its first step. */
  inlineUsers?: string[];
  /** The current service account to revoke: a credential reference, or its `ser_…` sub. */
  serviceAccountRef?: string;
  serviceAccountSub?: string;
  /** The administrator's address: with email configured they receive their link and reminders. */
  adminEmail?: string;
  /** The Temporal UI operators use (its public URL): the domain's current details link to its users' runs there. */
  temporalUiUrl?: string;
  /** The administrator's prompt. */
  deadlineMs: number;
  reminderIntervalMs: number;
  maxPrompts: number;
  /** How long each user's access may take to arrive before it is requested again. */
  userDeadlineMs: number;
  /** How many times access is requested for one user before they count as expired. */
  maxUserRequests: number;
  /** Children in flight at once; keep well under the server's pending-children limit (2,000 by default). */
  window: number;
  /** Continue as new once a run's history passes this many events (default 1,000; Temporal warns at 10,240). */
  historyEventBudget?: number;
  /** Set by continue-as-new, or to retry users against an already verified service account. */
  progress?: UsersProgress;
  /** Nothing is revoked until an operator approves this preview (the `approve` update); absent: start at once. */
  approval?: Approval;
  /** Absent: the domain never pauses itself. */
  breaker?: BreakerThresholds;
}

export interface EnterpriseStatus {
  workflowId: string;
  domain: string;
  /** Where each user's outcome is recorded (`EnterpriseUsers`). */
  captureId: string;
  phase: EnterprisePhase;
  prompt: number;
  authorizationUrl?: string;
  authorizationExpiresAt?: string;
  waitingSince?: string;
  providerName?: string;
  serviceAccountRef?: string;
  userCount: number;
  started: number;
  inFlight: number;
  counts: Partial<Record<UserOutcomeState, number>>;
  /** How many runs this downgrade has taken (continue-as-new keeps each history short). */
  runs: number;
  reason?: string;
  /** The preview the run was started from and, once decided, who approved or rejected it and when. */
  approval?: { previewId: string; expiresAt: string; decidedBy?: string; decidedAt?: string };
  /** Present while the users phase is paused: by whom (an operator, or the circuit breaker) and why. */
  paused?: Pause;
}

export interface EnterpriseUserInput {
  domain: string;
  captureId: string;
  email: string;
  position: number;
  parentWorkflowId: string;
  serviceAccountRef: string;
  userDeadlineMs: number;
  maxUserRequests: number;
}

export interface EnterpriseUserResult {
  position: number;
  state: UserOutcomeState;
  reason?: string;
}

/** What Cronofy posted to a user's callback URL; the code is only a reference. */
export type UserAccessCallback = { request: number; redirectUri: string } & (
  { codeRef: string } | { error: string; errorDescription?: string }
);

export const userAccessCallback = defineSignal<[UserAccessCallback]>('userAccessCallback');
export const getEnterpriseStatus = defineQuery<EnterpriseStatus>('getEnterpriseStatus');

/**
 * What the application's webhook hears of a domain: the administrator's link to hand on, reminders while it waits
 * (as for a person, with the domain's status), and that the domain paused itself and waits for an operator.
 */
export type DomainEvent = {
  type: 'authorization_required' | 'reminder' | 'domain_paused';
  status: EnterpriseStatus;
};

/** The operators' updates of a domain's downgrade (approve, reject, pause, resume). */
export const domainUpdates = operatorUpdates<EnterpriseStatus>();
