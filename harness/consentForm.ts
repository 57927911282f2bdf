import assert from 'node:assert/strict';

/** The parts every consent page (a person's or an administrator's) shares, read the way a browser would. */
export interface ConsentFormBase {
  action: string;
  hidden: Record<string, string>;
  decisions: string[];
}

export function unescapeHtml(text: string): string {
  return text
    .replaceAll('&quot;', '"')
    .replaceAll('&#39;', "'")
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
}

export function parseConsentFormBase(html: string): ConsentFormBase {
  const action = /<form method="post" action="([^"]+)">/.exec(html)?.[1];
  assert.ok(action, 'the consent page has a form');
  const hidden = Object.fromEntries(
    [...html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((match) => [
      match[1] ?? '',
      unescapeHtml(match[2] ?? ''),
    ]),
  );
  const decisions = [...html.matchAll(/<button type="submit" name="decision" value="([^"]+)"/g)].map(
    (match) => match[1] ?? '',
  );
  return { action: unescapeHtml(action), hidden, decisions };
}
