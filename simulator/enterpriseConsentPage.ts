import { decisionLabels, type EnterpriseDecision } from './consent.js';
import { escapeHtml, page } from './consentPage.js';

export interface EnterpriseConsentPageModel {
  clientId: string;
  scopes: readonly string[];
  delegatedScopes: readonly string[];
  /** The original authorization request, posted back unchanged with the decision. */
  requestParams: Record<string, string>;
  domain: string | undefined;
  decisions: readonly EnterpriseDecision[];
}

function scopeList(scopes: readonly string[], testId: string): string {
  const items = scopes.map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`).join('\n');
  return `<ul data-testid="${testId}">\n${items}\n</ul>`;
}

function decisionButton(decision: EnterpriseDecision): string {
  // A refusal must go through even when the domain field holds something the browser thinks invalid.
  const noValidate = decision === 'deny' ? ' formnovalidate' : '';
  return `<button type="submit" name="decision" value="${decision}" id="decision-${decision}" data-testid="decision-${decision}"${noValidate}>${escapeHtml(decisionLabels[decision])}</button>`;
}

export function renderEnterpriseConsentPage(model: EnterpriseConsentPageModel): string {
  const hiddenFields = Object.entries(model.requestParams)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  const accessModeHint = model.decisions.some((decision) => decision.startsWith('free_busy'))
    ? "<p>Choose how much of your users' calendars the application may see.</p>"
    : '';
  return page(
    'Connect your organization',
    `<p>The application <strong>${escapeHtml(model.clientId)}</strong> asks an administrator for this access:</p>
${scopeList(model.scopes, 'scope')}
<p>and to grant each user's calendar this access:</p>
${scopeList(model.delegatedScopes, 'delegated-scope')}
<form method="post" action="/enterprise_connect/oauth/authorize">
${hiddenFields}
<fieldset>
<legend>Organization</legend>
<p><label for="domain">Administrator email or domain</label>
<input id="domain" name="domain" type="text" required autocomplete="off" value="${escapeHtml(model.domain ?? '')}" data-testid="domain"></p>
</fieldset>
<fieldset>
<legend>Access</legend>
${accessModeHint}
${model.decisions.map(decisionButton).join('\n')}
</fieldset>
</form>`,
  );
}
