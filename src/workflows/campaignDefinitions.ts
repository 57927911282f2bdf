/**
 * The contract of Individual campaigns: one run that moves many Individual Connect users, each through their own
 * `individualDowngrade`, with the preview, approval, pause and circuit breaker of a domain's downgrade.
 */
import { defineQuery } from '@temporalio/workflow';
import { operatorUpdates } from './operatedRunDefinitions.js';
import type { FreeBusyProvider } from './definitions.js';
import type { Approval, BreakerThresholds, DomainControlState, Pause } from './enterpriseDefinitions.js';
import type { OutcomeCounts } from './usersWindow.js';

export function campaignWorkflowId(name: string): string {
  return `downgrade-campaign-${name}`;
}

/** A user's downgrade is named by the campaign, the capture and the user's place in it, and may start once. */
export function campaignUserWorkflowId(campaignId: string, captureId: string, position: number): string {
  return `${campaignId}-${captureId}-user-${position}`;
}

/** What each user's downgrade is started with. */
export interface CampaignDowngradeOptions {
  deadlineMs: number;
  reminderIntervalMs: number;
  maxPrompts: number;
  consentRequestLifetimeMs?: number;
  providerHint?: FreeBusyProvider;
  revokeWhenOpened?: boolean;
}

/** Where the users phase stands; carried across continue-as-new. */
export interface CampaignProgress {
  nextPosition: number;
  counts: OutcomeCounts;
  runs: number;
  control?: DomainControlState;
  approval?: CampaignStatus['approval'];
}

export interface CampaignInput {
  name: string;
  /** The users, captured in the store (`Campaigns`) by the client. */
  captureId: string;
  userCount: number;
  downgrade: CampaignDowngradeOptions;
  /** Users' downgrades running at once. */
  window: number;
  approval?: Approval;
  breaker?: BreakerThresholds;
  /** Continue as new once a run's history passes this many events (default 1,000). */
  historyEventBudget?: number;
  progress?: CampaignProgress;
}

export const CAMPAIGN_RUNNING_PHASES = ['awaiting_approval', 'moving_users', 'paused'] as const;
/** Every way a campaign can end. */
export const CAMPAIGN_ENDINGS = ['completed', 'rejected', 'expired', 'cancelled', 'failed'] as const;
export type CampaignPhase = (typeof CAMPAIGN_RUNNING_PHASES)[number] | (typeof CAMPAIGN_ENDINGS)[number];

export interface CampaignStatus {
  workflowId: string;
  name: string;
  captureId: string;
  phase: CampaignPhase;
  userCount: number;
  started: number;
  inFlight: number;
  /** Users by the final state of their downgrade (`completed`, `denied`, `expired`, …). */
  counts: OutcomeCounts;
  runs: number;
  reason?: string;
  approval?: { previewId: string; expiresAt: string; decidedBy?: string; decidedAt?: string };
  paused?: Pause;
}

/** What the application's webhook hears of a campaign: that it paused itself and waits for an operator. */
export type CampaignEvent = { type: 'campaign_paused'; status: CampaignStatus };

export const getCampaignStatus = defineQuery<CampaignStatus>('getCampaignStatus');
/** The operators' updates of a campaign: the same names as a domain's. */
export const campaignUpdates = operatorUpdates<CampaignStatus>();
