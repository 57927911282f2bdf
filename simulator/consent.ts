import type { ProviderName } from './state.js';

/**
 * The scope names Cronofy documents or its clients send, shorthands included (`write_only` is in Cronofy's
 * permissions guide and its list of delegated scopes; `event_reminders` and `change_participation_status` are
 * requested by client libraries). Anything else is `invalid_scope`.
 */
export const knownScopes: ReadonlySet<string> = new Set([
  'read_account',
  'list_calendars',
  'read_events',
  'create_event',
  'delete_event',
  'read_free_busy',
  'create_calendar',
  'event_reminders',
  'change_participation_status',
  'free_busy_write',
  'read_only',
  'write_only',
  'read_write',
  'free_busy',
]);

/** The scopes of a request, or undefined when the scope is missing or names something Cronofy does not know. */
export function parseScope(scope: string | undefined): string[] | undefined {
  const scopes = (scope ?? '').split(/\s+/).filter(Boolean);
  return scopes.length > 0 && scopes.every((name) => knownScopes.has(name)) ? scopes : undefined;
}

/** The buttons of the consent page: the provider and access mode the user picks, or a refusal. */
export const decisions = [
  'free_busy_google',
  'free_busy_microsoft',
  'read_write_google',
  'read_write_microsoft',
  'no_access',
  'deny',
] as const;
export type Decision = (typeof decisions)[number];
export type Grant = Exclude<Decision, 'deny'>;

/** The administrator picks the provider and the access mode for every user of the domain; there is no No Access. */
export const enterpriseDecisions = [
  'free_busy_google',
  'free_busy_microsoft',
  'read_write_google',
  'read_write_microsoft',
  'deny',
] as const satisfies readonly Decision[];
export type EnterpriseDecision = (typeof enterpriseDecisions)[number];

export const providerOfGrant: Record<Grant, ProviderName> = {
  free_busy_google: 'google_free_busy',
  free_busy_microsoft: 'ms_graph_free_busy',
  read_write_google: 'google',
  read_write_microsoft: 'ms_graph',
  no_access: 'cronofy',
};

export const decisionLabels: Record<Decision, string> = {
  free_busy_google: 'Google: Free/Busy',
  free_busy_microsoft: 'Microsoft 365: Free/Busy',
  read_write_google: 'Google: Read-Write',
  read_write_microsoft: 'Microsoft 365: Read-Write',
  no_access: 'No Access',
  deny: 'Deny',
};

type ProviderFamily = 'google' | 'microsoft';

function providerFamilyOf(providerName: string | undefined): ProviderFamily | undefined {
  if (providerName?.startsWith('google')) return 'google';
  if (providerName?.startsWith('ms_graph')) return 'microsoft';
  return undefined;
}

/**
 * What the consent page offers. The access-mode choice appears only when the app asks for `free_busy_write`;
 * a `provider_name` the simulator knows skips the provider picker, and a Free/Busy one (`google_free_busy`,
 * `ms_graph_free_busy`) goes straight to that provider's Free/Busy grant: the person can only grant it or refuse.
 */
export function offeredDecisions(scopes: readonly string[], providerName: string | undefined): Decision[] {
  const chosenFamily = providerFamilyOf(providerName);
  const accessModeChoice = scopes.includes('free_busy_write');
  if (chosenFamily && accessModeChoice && providerName?.endsWith('_free_busy')) {
    return [`free_busy_${chosenFamily}`, 'deny'];
  }
  const families: ProviderFamily[] = chosenFamily ? [chosenFamily] : ['google', 'microsoft'];
  const modes = accessModeChoice ? (['free_busy', 'read_write'] as const) : (['read_write'] as const);
  const grants = modes.flatMap((mode) => families.map((family): Grant => `${mode}_${family}`));
  return [...grants, ...(accessModeChoice ? (['no_access'] as const) : []), 'deny'];
}
