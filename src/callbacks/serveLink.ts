import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { StateClaims, StatePurpose } from '../contracts/stateToken.js';
import { verifyState, type CallbackDeps } from './delivery.js';
import { resultPage, statePage } from './resultPage.js';

/** A page the person is shown instead of being sent on. */
export type Page = [status: number, title: string, message: string];

const LinkQuery = z.object({ state: z.string().min(1).max(4096) }).strict();

export interface Link {
  path: string;
  /** The one purpose a `state` of this link is signed for. */
  purpose: StatePurpose;
  /** Where the browser goes (303), or the page it is shown. */
  follow(claims: StateClaims, log: FastifyBaseLogger): Promise<{ location: string } | Page>;
  /** The page for an error that says the downgrade is not waiting; anything else asks the person to try again. */
  ended(error: unknown, claims: StateClaims, log: FastifyBaseLogger): Page | undefined;
}

/**
 * Serves a link the service hands a person (GET, a `state` and nothing else): a bad query or `state` is shown its
 * page, a good one is followed. A failure the link cannot explain is logged and shown as "try again".
 */
export function serveLink(app: FastifyInstance, deps: CallbackDeps, link: Link): void {
  app.get(link.path, async (request, reply) => {
    const page = ([status, title, message]: Page) =>
      reply.code(status).type('text/html; charset=utf-8').send(resultPage(title, message));

    const query = LinkQuery.safeParse(request.query);
    if (!query.success) return page([400, 'This link is not valid', 'Expected a state, and nothing else.']);
    const claims = await verifyState(deps, request, query.data.state, [link.purpose]);
    if ('refused' in claims) return page(statePage(claims.refused));

    try {
      const next = await link.follow(claims, request.log);
      return 'location' in next ? reply.code(303).header('location', next.location).send() : page(next);
    } catch (error) {
      const ended = link.ended(error, claims, request.log);
      if (ended) return page(ended);
      request.log.error({ err: error, workflowId: claims.workflowId }, `could not follow ${link.path}`);
      return page([
        503,
        'Please try again',
        'We could not prepare your sign-in just now. Reload this page in a minute.',
      ]);
    }
  });
}
