/**
 * Links into the Temporal UI for operators: a domain's users are separate runs, not its children, so these links
 * stand in for the UI's own parent-child navigation. Absolute, because the UI opens a link in its markdown fields
 * in a new tab only when it leads elsewhere.
 */

/** The list of runs that match a visibility query. */
export function workflowListLink(uiUrl: string, namespace: string, query: string): string {
  return `${uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows?query=${encodeURIComponent(query)}`;
}

/** A workflow's latest run (the UI follows a continue-as-new chain to it). */
export function workflowLink(uiUrl: string, namespace: string, workflowId: string): string {
  return `${uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** The query that lists a domain's users' runs. */
export function domainUsersQuery(domain: string): string {
  return `CronofyDomain = "${domain}" AND DowngradeKind = "enterprise_user"`;
}

/** The text of the domain's link to its users' runs. */
export const USERS_LINK_TEXT = 'Open the list of its users';
