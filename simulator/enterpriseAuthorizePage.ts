import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { redirectTo, requestParamsOf, sendErrorPage } from './authorizePage.js';
import {
  enterpriseDecisions,
  offeredDecisions,
  parseScope,
  providerOfGrant,
  type EnterpriseDecision,
} from './consent.js';
import { renderEnterpriseConsentPage } from './enterpriseConsentPage.js';
import type { SimulatorClient, SimulatorState } from './state.js';

/** An Enterprise Connect request must ask for at least one of these. */
export const serviceAccountScopes: ReadonlySet<string> = new Set([
  'service_account/accounts/manage',
  'service_account/accounts/unrestricted_access',
  'service_account/resources/manage',
  'service_account/resources/unrestricted_access',
]);

const authorizeRequestSchema = z.object({
  response_type: z.string().optional(),
  client_id: z.string().optional(),
  redirect_uri: z.string().optional(),
  scope: z.string().optional(),
  delegated_scope: z.string().optional(),
  state: z.string().optional(),
  provider_name: z.string().optional(),
});
type AuthorizeRequest = z.infer<typeof authorizeRequestSchema>;

const consentFormSchema = authorizeRequestSchema.extend({
  decision: z.enum(enterpriseDecisions),
  domain: z.string().optional(),
});

const domainPattern = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** The administrator may type their email address or the bare domain. */
export const adminDomainSchema = z
  .string()
  .trim()
  .toLowerCase()
  .transform((input) => input.split('@').at(-1) ?? '')
  .pipe(z.string().regex(domainPattern));

type CheckedRequest =
  | { outcome: 'reject'; message: string }
  | { outcome: 'redirect'; location: string }
  | {
      outcome: 'consent';
      client: SimulatorClient;
      redirectUri: string;
      scopes: string[];
      delegatedScopes: string[];
    };

function splitScope(scope: string | undefined): string[] {
  return (scope ?? '').split(/\s+/).filter(Boolean);
}

/** As for Individual Connect: an unknown client or unregistered redirect_uri gets a page, other errors a redirect. */
function checkAuthorizeRequest(state: SimulatorState, request: AuthorizeRequest): CheckedRequest {
  const client = request.client_id === undefined ? undefined : state.findClient(request.client_id);
  if (!client) return { outcome: 'reject', message: 'Unknown client_id.' };
  const redirectUri = request.redirect_uri;
  if (redirectUri === undefined || !client.redirectUris.includes(redirectUri)) {
    return { outcome: 'reject', message: 'The redirect_uri is not registered for this application.' };
  }
  const fail = (error: string): CheckedRequest => ({
    outcome: 'redirect',
    location: redirectTo(redirectUri, { error, state: request.state }),
  });
  if (request.response_type !== 'code') return fail('unsupported_response_type');
  const scopes = splitScope(request.scope);
  if (!scopes.some((scope) => serviceAccountScopes.has(scope))) return fail('invalid_scope');
  if (splitScope(request.delegated_scope).length === 0) return fail('invalid_request');
  const delegatedScopes = parseScope(request.delegated_scope);
  if (!delegatedScopes) return fail('invalid_scope');
  return { outcome: 'consent', client, redirectUri, scopes, delegatedScopes };
}

/** Free/Busy is offered only when `free_busy_write` is delegated; a known `provider_name` skips the picker. */
function offeredEnterpriseDecisions(
  delegatedScopes: readonly string[],
  providerName: string | undefined,
): EnterpriseDecision[] {
  return offeredDecisions(delegatedScopes, providerName).filter(
    (decision): decision is EnterpriseDecision => decision !== 'no_access',
  );
}

function sendRejection(
  reply: FastifyReply,
  checked: Exclude<CheckedRequest, { outcome: 'consent' }>,
): FastifyReply {
  return checked.outcome === 'reject'
    ? sendErrorPage(reply, checked.message)
    : reply.redirect(checked.location, 302);
}

/** The administrator's consent page: `GET` shows it, `POST` submits it and creates the service account. */
export function registerEnterpriseAuthorizePage(app: FastifyInstance, state: SimulatorState): void {
  const path = '/enterprise_connect/oauth/authorize';
  const config = { endpoint: 'enterprise_authorize' } as const;

  app.get(path, { config }, async (request, reply) => {
    const parsed = authorizeRequestSchema.safeParse(request.query);
    if (!parsed.success) return sendErrorPage(reply, 'The authorization request is malformed.');
    const checked = checkAuthorizeRequest(state, parsed.data);
    if (checked.outcome !== 'consent') return sendRejection(reply, checked);

    const html = renderEnterpriseConsentPage({
      clientId: checked.client.clientId,
      scopes: checked.scopes,
      delegatedScopes: checked.delegatedScopes,
      requestParams: requestParamsOf(parsed.data),
      domain: state.enterprise.mostRecentlyRevokedServiceAccount(checked.client.clientId)?.domain,
      decisions: offeredEnterpriseDecisions(checked.delegatedScopes, parsed.data.provider_name),
    });
    return reply.type('text/html; charset=utf-8').send(html);
  });

  app.post(path, { config }, async (request, reply) => {
    const parsed = consentFormSchema.safeParse(request.body);
    if (!parsed.success) return sendErrorPage(reply, 'The consent form is malformed.');
    const form = parsed.data;
    const checked = checkAuthorizeRequest(state, form);
    if (checked.outcome !== 'consent') return sendRejection(reply, checked);

    const { client, redirectUri, scopes, delegatedScopes } = checked;
    if (!offeredEnterpriseDecisions(delegatedScopes, form.provider_name).includes(form.decision)) {
      return sendErrorPage(reply, `"${form.decision}" is not offered for this request.`);
    }
    if (form.decision === 'deny') {
      return reply.redirect(redirectTo(redirectUri, { error: 'access_denied', state: form.state }), 302);
    }

    const domain = adminDomainSchema.safeParse(form.domain ?? '');
    if (!domain.success)
      return sendErrorPage(reply, "Enter the administrator's email address or the domain.");
    const serviceAccount = state.enterprise.createServiceAccount({
      clientId: client.clientId,
      domain: domain.data,
      providerName: providerOfGrant[form.decision],
      scope: scopes.join(' '),
      delegatedScope: delegatedScopes.join(' '),
    });
    const code = state.enterprise.issueCode(serviceAccount, redirectUri);
    return reply.redirect(redirectTo(redirectUri, { code, state: form.state }), 302);
  });
}
