import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ANSWERED_PATH } from '../contracts/callbackPaths.js';
import type { InvalidStateReason } from '../contracts/stateToken.js';
import { stateRejectionStatus } from './delivery.js';

const escapes: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => escapes[char] ?? char);
}

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

/** The plain page a person sees after Cronofy sends their browser back to us. */
export function resultPage(title: string, message: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p></body>
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

/** The pages a handled callback sends the browser on to (303): their URL holds no code and no state. */
const answeredPages = {
  granted: ['Thank you', 'Your calendar connection has been updated. You can close this window.'],
  declined: ['Noted', 'You did not grant access. You can close this window.'],
} as const;

export type Answered = keyof typeof answeredPages;

export function answeredUrl(answered: Answered): string {
  return `${ANSWERED_PATH}?${new URLSearchParams({ result: answered })}`;
}

/** The page behind ANSWERED_PATH; it changes nothing, so reloading it is harmless. */
export function getAnsweredPage(app: FastifyInstance): void {
  app.get(ANSWERED_PATH, async (request, reply) => {
    const result = (request.query as { result?: string }).result;
    const [title, message] =
      result && Object.hasOwn(answeredPages, result)
        ? answeredPages[result as Answered]
        : (['Done', 'You can close this window.'] as const);
    return reply.type('text/html; charset=utf-8').send(resultPage(title, message));
  });
}
