import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ANSWERED_PATH } from '../contracts/callbackPaths.js';
import { InvalidStateError, type AnswerClaims } from '../contracts/stateToken.js';
import type { CallbackDeps } from './delivery.js';
import { resultPage } from './resultPage.js';
import { verdictOn, type Verdict } from './verdict.js';

const AnsweredQuery = z.object({ answer: z.string().min(1).max(4096) }).strict();

/**
 * How long the page waits for the verdict before it says that the answer is still being checked: the exchange and
 * the check take a few Cronofy calls, and a browser kept waiting much longer looks broken.
 */
export const DEFAULT_VERDICT_WAIT_MS = 8_000;

/**
 * Before each read of the status: soon at first, then less often, so that a slow check costs few queries (each is
 * answered by a worker, a billed action on Temporal Cloud). The first read waits too: when the browser gets here the
 * exchange and the check have hardly begun, and a read at once would nearly always find no verdict yet.
 */
const FIRST_PAUSE_MS = 100;
const LONGEST_PAUSE_MS = 1_000;

type Page = [title: string, message: string, link?: { href: string; text: string }];

/**
 * The page a handled redirect sends the browser on to. Its reference names the run that got the answer and the
 * prompt it answered; the page reads that run's status (a query: nothing is written) until it holds the verdict on
 * that answer, for at most `verdictWaitMs`, and says what it is. Reloading it reads again and changes nothing.
 */
export function getAnsweredPage(app: FastifyInstance, deps: CallbackDeps, verdictWaitMs: number): void {
  app.get(ANSWERED_PATH, async (request, reply) => {
    const page = (status: number, ...[title, message, link]: Page) =>
      reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(resultPage(title, message, link));

    const query = AnsweredQuery.safeParse(request.query);
    if (!query.success) return page(400, 'This page is not valid', 'Its address is not one we gave out.');
    let answer: AnswerClaims;
    try {
      answer = await deps.stateSigner.verifyAnswer(query.data.answer);
    } catch (error) {
      if (!(error instanceof InvalidStateError)) throw error;
      request.log.warn({ reason: error.reason }, 'answered page refused: bad reference');
      return error.reason === 'expired'
        ? page(410, 'This page has expired', 'You will hear from us how your request ended.')
        : page(400, 'This page is not valid', 'Its address was damaged or is not one we gave out.');
    }

    const verdict = await awaitVerdict(deps, answer, Date.now() + verdictWaitMs, request, reply);
    if (verdict === 'not_found') {
      return page(410, 'This request has ended', 'We no longer have the request this page was about.');
    }
    request.log.info({ workflowId: answer.workflowId, outcome: verdict.outcome }, 'answered page shown');
    return page(200, ...verdictPage(verdict, answer.asked === 'person'));
  });
}

/**
 * Reads the run's status until it holds the verdict on the answer or `until` passes; stops early when the browser
 * has gone away.
 */
async function awaitVerdict(
  deps: CallbackDeps,
  answer: AnswerClaims,
  until: number,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<Verdict | 'not_found'> {
  let unread: unknown;
  for (let pause = FIRST_PAUSE_MS; ; pause = Math.min(2 * pause, LONGEST_PAUSE_MS)) {
    await sleep(Math.min(pause, Math.max(0, until - Date.now())));
    try {
      const verdict = verdictOn(answer, await deps.readStatus(answer, new Date(until)));
      if (verdict.outcome !== 'checking') return verdict;
      unread = undefined;
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) return 'not_found';
      // Temporal unreachable, or no worker to answer the query yet: the same as no verdict yet.
      unread = error;
    }
    const left = until - Date.now();
    if (left <= 0 || reply.raw.destroyed) {
      if (unread)
        request.log.warn({ err: unread, workflowId: answer.workflowId }, 'could not read the status');
      return { outcome: 'checking' };
    }
  }
}

/** What the page says of a verdict, to the person or to the domain's administrator. */
function verdictPage(verdict: Verdict, person: boolean): Page {
  const connection = person ? 'connection' : 'authorization';
  switch (verdict.outcome) {
    case 'checking':
      return [
        'We are still checking your answer',
        'This is taking longer than usual. You can close this window: you will hear from us once it is checked.',
      ];
    case 'confirmed':
      return person
        ? [
            'Your calendar is connected with Free/Busy',
            'We checked the connection you just made: it is Free/Busy. You can close this window.',
          ]
        : [
            'Your domain is connected with Free/Busy',
            'We checked the authorization you just gave: it is Free/Busy. You can close this window.',
          ];
    case 'asked_again': {
      const title = person ? 'You chose Read/Write access again' : 'The access you granted was not Free/Busy';
      if (!verdict.authorizationUrl) {
        return [
          title,
          `This request is for Free/Busy access only, so that ${connection} was removed and you were asked ` +
            'again. That request is no longer waiting here: you will hear from us.',
        ];
      }
      return [
        title,
        `This request is for Free/Busy access only, so that ${connection} was removed. Please sign in again ` +
          'and choose Free/Busy.',
        { href: verdict.authorizationUrl, text: 'Sign in again with Free/Busy' },
      ];
    }
    case 'read_write_kept':
      return [
        person ? 'You chose Read/Write access again' : 'The access you granted was not Free/Busy',
        `That was the last time we could ask, so that ${connection} was removed and ` +
          (person
            ? 'your calendar is no longer connected.'
            : "your domain's calendars are no longer connected."),
      ];
    case 'other_account':
      return person
        ? [
            'You signed in with another account',
            'The calendar account you connected is not the one this request was for, so that connection was ' +
              'removed and this request has ended.',
          ]
        : [
            'You signed in for another domain',
            'The authorization you gave is for another domain than the one this request was for, so it was ' +
              'removed and this request has ended.',
          ];
    case 'no_access':
      return [
        'You chose No Access',
        `This request is for Free/Busy access, so that ${connection} was removed and this request has ended.`,
      ];
    case 'denied':
      return [
        'You declined',
        'Nothing was connected, and this request has ended. You can close this window.',
      ];
    case 'failed':
      return ['Something went wrong', 'We could not complete this request, and it has ended.'];
    case 'expired':
      return [
        'This request had expired',
        "Your answer came after the request's deadline, so it was not used.",
      ];
    case 'cancelled':
      return ['This request was cancelled', 'It was cancelled, so your answer was not used.'];
    case 'ended':
      return ['This request has ended', 'It had ended before your answer could be used.'];
  }
}
