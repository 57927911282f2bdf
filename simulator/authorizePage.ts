import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { decisions, offeredDecisions, parseScope, providerOfGrant } from './consent.js';
import { renderConsentPage, renderErrorPage } from './consentPage.js';
import type { SimulatorClient, SimulatorState } from './state.js';

const authorizeRequestSchema = z.object({
  response_type: z.string().optional(),
  client_id: z.string().optional(),
  redirect_uri: z.string().optional(),
  scope: z.string().optional(),
  state: z.string().optional(),
  provider_name: z.string().optional(),
  avoid_linking: z.string().optional(),
  link_token: z.string().optional(),
  delegated_scope: z.string().optional(),
});
type AuthorizeRequest = z.infer<typeof authorizeRequestSchema>;

const consentFormSchema = authorizeRequestSchema.extend({
  decision: z.enum(decisions),
  email: z.string().optional(),
  new_email: z.string().optional(),
});

type CheckedRequest =
  | { outcome: 'reject'; message: string }
  | { outcome: 'redirect'; location: string }
  | { outcome: 'consent'; client: SimulatorClient; redirectUri: string; scopes: string[] };

/** `redirect_uri` with parameters appended, keeping any query string it already has. */
export function redirectTo(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.append(name, value);
  }
  return url.toString();
}

/**
 * A request naming an unknown client or an unregistered redirect_uri gets an error page: redirecting would hand
 * the browser to an address nobody vouched for. Other errors go back to the application.
 */
function checkAuthorizeRequest(state: SimulatorState, request: AuthorizeRequest): CheckedRequest {
  const client = request.client_id === undefined ? undefined : state.findClient(request.client_id);
  if (!client) return { outcome: 'reject', message: 'Unknown client_id.' };
  const redirectUri = request.redirect_uri;
  if (redirectUri === undefined || !client.redirectUris.includes(redirectUri)) {
    return { outcome: 'reject', message: 'The redirect_uri is not registered for this application.' };
  }
  if (request.response_type !== 'code') {
    const location = redirectTo(redirectUri, { error: 'unsupported_response_type', state: request.state });
    return { outcome: 'redirect', location };
  }
  const scopes = parseScope(request.scope);
  if (!scopes) {
    return {
      outcome: 'redirect',
      location: redirectTo(redirectUri, { error: 'invalid_scope', state: request.state }),
    };
  }
  return { outcome: 'consent', client, redirectUri, scopes };
}

export function sendErrorPage(reply: FastifyReply, message: string): FastifyReply {
  return reply.code(400).type('text/html; charset=utf-8').send(renderErrorPage(message));
}

function sendRejection(
  reply: FastifyReply,
  checked: Exclude<CheckedRequest, { outcome: 'consent' }>,
): FastifyReply {
  return checked.outcome === 'reject'
    ? sendErrorPage(reply, checked.message)
    : reply.redirect(checked.location, 302);
}

export function requestParamsOf(request: AuthorizeRequest): Record<string, string> {
  return Object.fromEntries(
    Object.entries(request).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** The app-host authorization page: `GET /oauth/authorize` shows it, `POST /oauth/authorize` submits it. */
export function registerAuthorizePage(app: FastifyInstance, state: SimulatorState): void {
  app.get('/oauth/authorize', { config: { endpoint: 'authorize' } }, async (request, reply) => {
    const parsed = authorizeRequestSchema.safeParse(request.query);
    if (!parsed.success) return sendErrorPage(reply, 'The authorization request is malformed.');
    const checked = checkAuthorizeRequest(state, parsed.data);
    if (checked.outcome !== 'consent') return sendRejection(reply, checked);

    const { clientId } = checked.client;
    const accounts = state.accountsOfClient(clientId);
    const preselected = state.mostRecentlyRevokedAccount(clientId) ?? accounts[0];
    const html = renderConsentPage({
      clientId,
      scopes: checked.scopes,
      requestParams: requestParamsOf(parsed.data),
      accountEmails: accounts.map((account) => account.email),
      selectedEmail: preselected?.email,
      decisions: offeredDecisions(checked.scopes, parsed.data.provider_name),
    });
    return reply.type('text/html; charset=utf-8').send(html);
  });

  app.post('/oauth/authorize', { config: { endpoint: 'authorize' } }, async (request, reply) => {
    const parsed = consentFormSchema.safeParse(request.body);
    if (!parsed.success) return sendErrorPage(reply, 'The consent form is malformed.');
    const form = parsed.data;
    const checked = checkAuthorizeRequest(state, form);
    if (checked.outcome !== 'consent') return sendRejection(reply, checked);

    const { client, redirectUri, scopes } = checked;
    if (!offeredDecisions(scopes, form.provider_name).includes(form.decision)) {
      return sendErrorPage(reply, `"${form.decision}" is not offered for this request.`);
    }
    if (form.decision === 'deny') {
      return reply.redirect(redirectTo(redirectUri, { error: 'access_denied', state: form.state }), 302);
    }

    const email = z.email().safeParse(form.new_email?.trim() || form.email);
    if (!email.success) return sendErrorPage(reply, 'Choose an account or enter a valid email address.');
    const account = state.findOrCreateAccount(email.data);
    const authorization = state.createAuthorization(
      account,
      client.clientId,
      scopes.join(' '),
      providerOfGrant[form.decision],
    );
    const code = state.issueCode(authorization, redirectUri);
    return reply.redirect(redirectTo(redirectUri, { code, state: form.state }), 302);
  });
}
