import { setCurrentDetails, upsertSearchAttributes } from '@temporalio/workflow';
import { searchAttributes } from './definitions.js';

/**
 * Shows a run where operators look: its state as the `DowngradeState` search attribute (with `CronofyProvider`
 * once the provider is known) and its current details in the Temporal UI.
 */
export function showState(state: string, details: string, providerName?: string): void {
  setCurrentDetails(details);
  upsertSearchAttributes([
    { key: searchAttributes.state, value: state },
    ...(providerName ? [{ key: searchAttributes.provider, value: providerName }] : []),
  ]);
}
