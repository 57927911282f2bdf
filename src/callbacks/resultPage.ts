import { createHash } from 'node:crypto';
import { ANSWERED_PATH } from '../contracts/callbackPaths.js';
import type { AnswerClaims, InvalidStateReason, StateSigner } from '../contracts/stateToken.js';
import { stateRejectionStatus } from './delivery.js';
import { escapeHtml } from '../escapeHtml.js';

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;line-height:1.5}';

/**
 * Headers on every answer of the callback server. Its pages are answers to one person's sign-in: never cached,
 * never framed, no scripts, and the URL (which may carry a code or a state) never sent on as a referrer. The one
 * inline style is allowed by its hash.
 */
export const PAGE_HEADERS = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'content-security-policy': [
    "default-src 'none'",
    `style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; '),
} as const;

/**
 * The plain page a person sees after Cronofy sends their browser back to us; with `link`, a link to follow next (a
 * plain link: the pages run no script).
 */
export function resultPage(title: string, message: string, link?: { href: string; text: string }): string {
  const next = link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.text)}</a></p>` : '';
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p>${next}</body>
</html>`;
}

const stateMessages: Record<InvalidStateReason, [title: string, message: string]> = {
  malformed: ['This link is not valid', 'The sign-in link was damaged or is not one we issued.'],
  forged: ['This link is not valid', 'The sign-in link was not issued by this service.'],
  wrong_purpose: ['This link is not valid', 'The sign-in link was issued for something else.'],
  expired: ['This link has expired', 'Ask the application for a new link.'],
};

/** The page (status, title, message) a person sees for a link whose `state` is refused. */
export function statePage(reason: InvalidStateReason): [status: number, title: string, message: string] {
  return [stateRejectionStatus[reason], ...stateMessages[reason]];
}

/**
 * How long the page after consent can be reloaded: long enough to come back to while the answer is checked, short
 * enough that a URL left in the browser's history soon stops showing the downgrade.
 */
const ANSWERED_PAGE_TTL_MS = 15 * 60 * 1000;

/**
 * Where a handled redirect sends the browser on (303): the page after consent, with a signed reference to the run
 * that got the answer and the prompt it answered; no code and no state.
 */
export async function answeredUrl(signer: StateSigner, answer: AnswerClaims): Promise<string> {
  const reference = await signer.signAnswer(answer, new Date(Date.now() + ANSWERED_PAGE_TTL_MS));
  return `${ANSWERED_PATH}?${new URLSearchParams({ answer: reference })}`;
}
