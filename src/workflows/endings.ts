import { CAMPAIGN_ENDINGS } from './campaignDefinitions.js';
import { ENTERPRISE_ENDINGS } from './enterpriseDefinitions.js';

/** Whether an operated run (a domain's downgrade or a campaign) has ended in this phase. */
export function operatedRunHasEnded(phase: string): boolean {
  return ([...ENTERPRISE_ENDINGS, ...CAMPAIGN_ENDINGS] as readonly string[]).includes(phase);
}
