import { decisionLabels, type Decision } from './consent.js';

export interface ConsentPageModel {
  clientId: string;
  scopes: readonly string[];
  /** The original authorization request, posted back unchanged with the decision. */
  requestParams: Record<string, string>;
  accountEmails: readonly string[];
  selectedEmail: string | undefined;
  decisions: readonly Decision[];
}

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

export function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)} · Cronofy simulator</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
fieldset { margin: 1rem 0; }
button { display: block; margin: 0.5rem 0; padding: 0.4rem 1rem; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

function accountChooser(emails: readonly string[], selected: string | undefined): string {
  const options = emails.map((email) => {
    const isSelected = email === selected ? ' selected' : '';
    return `<option value="${escapeHtml(email)}"${isSelected}>${escapeHtml(email)}</option>`;
  });
  const knownAccounts =
    emails.length === 0
      ? []
      : [
          '<p><label for="email">Calendar account</label>',
          '<select id="email" name="email" data-testid="email">',
          ...options,
          '</select></p>',
        ];
  return [
    '<fieldset>',
    '<legend>Account</legend>',
    ...knownAccounts,
    `<p><label for="new_email">${emails.length === 0 ? 'Email address' : 'Or another account'}</label>`,
    '<input id="new_email" name="new_email" type="email" autocomplete="off" data-testid="new-email"></p>',
    '</fieldset>',
  ].join('\n');
}

function decisionButton(decision: Decision): string {
  // A refusal must go through even when the email field holds something the browser thinks invalid.
  const noValidate = decision === 'deny' ? ' formnovalidate' : '';
  return `<button type="submit" name="decision" value="${decision}" id="decision-${decision}" data-testid="decision-${decision}"${noValidate}>${escapeHtml(decisionLabels[decision])}</button>`;
}

export function renderConsentPage(model: ConsentPageModel): string {
  const scopes = model.scopes.map((scope) => `<li><code>${escapeHtml(scope)}</code></li>`).join('\n');
  const hiddenFields = Object.entries(model.requestParams)
    .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
    .join('\n');
  const accessModeHint = model.decisions.includes('no_access')
    ? '<p>Choose how much of your calendar the application may see.</p>'
    : '';
  return page(
    'Connect your calendar',
    `<p>The application <strong>${escapeHtml(model.clientId)}</strong> requests this access:</p>
<ul>
${scopes}
</ul>
<form method="post" action="/oauth/authorize">
${hiddenFields}
${accountChooser(model.accountEmails, model.selectedEmail)}
<fieldset>
<legend>Access</legend>
${accessModeHint}
${model.decisions.map(decisionButton).join('\n')}
</fieldset>
</form>`,
  );
}

export function renderErrorPage(message: string): string {
  return page('Authorization error', `<p data-testid="error">${escapeHtml(message)}</p>`);
}
