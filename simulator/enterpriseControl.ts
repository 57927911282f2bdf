import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sendInvalid } from './control.js';
import { adminDomainSchema } from './enterpriseAuthorizePage.js';
import { outcomeScriptSchema } from './enterpriseOutcomes.js';
import type { UserSummary } from './enterpriseState.js';
import type { SimulatorState } from './state.js';

const maxDomainUsers = 100_000;

const createDomainSchema = z.object({
  domain: adminDomainSchema,
  client_id: z.string().min(1),
  provider: z.enum(['google', 'ms_graph']).default('google'),
  users: z.array(z.email()).max(maxDomainUsers),
});

const settingsSchema = z.object({ serviceAccountTokenTtlSeconds: z.number().int().positive() });

const stateQuerySchema = z.object({
  summary: z.enum(['1', 'true', '0', 'false']).optional(),
  email: z.string().optional(),
  offset: z.coerce.number().int().nonnegative().default(0),
  limit: z.coerce.number().int().positive().max(10_000).default(1000),
});

function usersSummary(users: readonly UserSummary[]) {
  const byProvider: Record<string, { active: number; revoked: number }> = {};
  for (const user of users) {
    const counts = (byProvider[user.provider_name] ??= { active: 0, revoked: 0 });
    counts[user.revoked ? 'revoked' : 'active'] += 1;
  }
  const revoked = users.filter((user) => user.revoked).length;
  return { total: users.length, active: users.length - revoked, revoked, by_provider: byProvider };
}

/** Enterprise Connect controls under `/_sim/enterprise`. Not part of Cronofy's API. */
export function registerEnterpriseControlRoutes(app: FastifyInstance, state: SimulatorState): void {
  const { enterprise } = state;

  // A domain already connected Read/Write through a service account: the starting point of an Enterprise downgrade.
  app.post('/_sim/enterprise/domains', { bodyLimit: 32 * 1024 * 1024 }, async (request, reply) => {
    const parsed = createDomainSchema.safeParse(request.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    const { domain, client_id: clientId, provider, users } = parsed.data;
    if (!state.findClient(clientId)) return reply.code(400).send({ error: 'unknown_client' });

    const serviceAccount = enterprise.createServiceAccount({
      clientId,
      domain,
      providerName: provider,
      scope: 'service_account/accounts/manage',
      delegatedScope: 'read_write',
    });
    const uniqueEmails = new Map(users.map((email) => [email.toLowerCase(), email]));
    const connected = [...uniqueEmails.values()].map((email) => {
      const authorization = enterprise.grantUserAccess(serviceAccount, email, 'read_write');
      return { email, sub: authorization.sub };
    });
    const tokens = enterprise.issueTokens(serviceAccount);
    return reply.code(201).send({
      service_account_id: serviceAccount.id,
      access_token: tokens.accessToken,
      refresh_token: tokens.refreshToken,
      expires_in: tokens.expiresIn,
      users: connected,
    });
  });

  // Users are paged (`offset`, `limit`) or, with `summary=1`, only counted: a domain may have 50,000 of them.
  app.get('/_sim/enterprise/state', async (request, reply) => {
    const parsed = stateQuerySchema.safeParse(request.query);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    const { summary, email, offset, limit } = parsed.data;
    const allUsers = enterprise.users();
    const common = {
      service_accounts: enterprise.serviceAccountsView(),
      callbacks: { ...enterprise.deliveries.counts },
      settings: { serviceAccountTokenTtlSeconds: enterprise.serviceAccountTokenTtlSeconds },
    };
    if (summary === '1' || summary === 'true') return { ...common, users: usersSummary(allUsers) };

    const users =
      email === undefined
        ? allUsers
        : allUsers.filter((user) => user.email.toLowerCase() === email.toLowerCase());
    return {
      ...common,
      users: { total: users.length, offset, limit, items: users.slice(offset, offset + limit) },
    };
  });

  app.put('/_sim/enterprise/settings', async (request, reply) => {
    const parsed = settingsSchema.safeParse(request.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    enterprise.serviceAccountTokenTtlSeconds = parsed.data.serviceAccountTokenTtlSeconds;
    return parsed.data;
  });

  app.get('/_sim/enterprise/outcomes', async () => enterprise.outcomes.describe());

  app.put('/_sim/enterprise/outcomes', async (request, reply) => {
    const parsed = outcomeScriptSchema.safeParse(request.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    enterprise.outcomes.set(parsed.data);
    return enterprise.outcomes.describe();
  });
}
