export { individualDowngrade } from './individualDowngrade.js';
export { enterpriseDowngrade } from './enterpriseDowngrade.js';
export { enterpriseUserDowngrade } from './enterpriseUserDowngrade.js';
export { inspectServiceAccount } from './serviceAccountInspection.js';
export { individualCampaign } from './individualCampaign.js';
