/**
 * What a backend service imports to start and follow downgrades (`cronofy-downgrade/client`). It loads no worker,
 * no activity and no database driver: a credential store or users' store, where a client takes one, is the
 * backend's own, on the service's database. The *Runs classes need Temporal alone; the *Client classes add what
 * needs the service's database (token handover, previews, reports).
 */
export {
  IndividualClient,
  IndividualRuns,
  type DowngradeDefaults,
  type IndividualClientOptions,
  type IndividualRunsOptions,
  type StartedWithLink,
  type StartIndividualDowngrade,
  type StartIndividualDowngradeWithToken,
} from './client/individualClient.js';
export {
  EnterpriseRuns,
  type EnterpriseDefaults,
  type EnterpriseRunSettings,
  type EnterpriseRunsOptions,
  type StartInlineEnterpriseDowngrade,
  type UserPages,
} from './client/enterpriseRuns.js';
export {
  EnterpriseClient,
  type EnterpriseClientOptions,
  type PreviewEnterpriseDowngrade,
  type ServiceAccount,
  type StartEnterpriseDowngrade,
} from './client/enterpriseClient.js';
export {
  CampaignClient,
  CampaignRuns,
  type CampaignClientOptions,
  type CampaignPerson,
  type CampaignPreview,
  type StartCampaign,
} from './client/campaignClient.js';
export { OperatedRuns } from './client/operatedRuns.js';
export {
  DowngradeClientError,
  DowngradeNotFoundError,
  DowngradeRefusedError,
  DowngradeUsageError,
  PreviewNotFoundError,
} from './client/errors.js';
export { payloadEncryption } from './codec/payloadEncryption.js';
export type { EnterprisePreview } from './client/enterprisePreview.js';
export type {
  ApplicationEvent,
  DowngradeResult,
  DowngradeState,
  DowngradeStatus,
  FreeBusyProvider,
} from './workflows/definitions.js';
export type {
  BreakerThresholds,
  DomainEvent,
  EnterprisePhase,
  EnterpriseStatus,
  UserOutcomeState,
} from './workflows/enterpriseDefinitions.js';
export type { OperatorDecision } from './workflows/operatedRunDefinitions.js';
export type { CampaignEvent, CampaignPhase, CampaignStatus } from './workflows/campaignDefinitions.js';
