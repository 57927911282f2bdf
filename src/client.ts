/**
 * What a backend service imports to start and follow downgrades (`cronofy-downgrade/client`). It loads no worker,
 * no activity and no database driver: a credential store or users' store, where a method takes one, is the
 * backend's own, on the service's database.
 */
export {
  DowngradeClient,
  type DowngradeClientOptions,
  type DowngradeDefaults,
  type EnterpriseDefaults,
  type PreviewEnterpriseDowngrade,
  type StartEnterpriseDowngrade,
  type StartIndividualDowngrade,
} from './downgradeClient.js';
export {
  CampaignClient,
  type CampaignClientOptions,
  type CampaignPerson,
  type CampaignPreview,
  type StartCampaign,
} from './campaignClient.js';
export { DowngradeNotFoundError, DowngradeRefusedError, PreviewNotFoundError } from './clientErrors.js';
export { payloadEncryption } from './codec/payloadEncryption.js';
export type { EnterprisePreview } from './enterprisePreview.js';
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
  OperatorDecision,
  UserOutcomeState,
} from './workflows/enterpriseDefinitions.js';
export type { CampaignEvent, CampaignPhase, CampaignStatus } from './workflows/campaignDefinitions.js';
