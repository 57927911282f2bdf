import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { faultSchema } from './faults.js';
import { rateLimitSchema } from './rateLimit.js';
import type { SimulatorState } from './state.js';

const createAccountSchema = z.object({
  email: z.email(),
  client_id: z.string().min(1),
  provider: z.enum(['google', 'ms_graph']).default('google'),
});

const faultsSchema = z.union([faultSchema, z.array(faultSchema)]);

const advanceClockSchema = z.object({ seconds: z.number().positive() });

export function sendInvalid(reply: FastifyReply, error: z.ZodError): FastifyReply {
  return reply.code(400).send({ error: 'invalid_request', message: z.prettifyError(error) });
}

/** Test and demo controls under `/_sim`. Not part of Cronofy's API: no faults, rate limits or request log. */
export function registerControlRoutes(app: FastifyInstance, state: SimulatorState): void {
  // A user who already granted Read/Write access: the starting point of every downgrade.
  app.post('/_sim/accounts', async (request, reply) => {
    const parsed = createAccountSchema.safeParse(request.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    const { email, client_id: clientId, provider } = parsed.data;
    if (!state.findClient(clientId)) return reply.code(400).send({ error: 'unknown_client' });

    const account = state.findOrCreateAccount(email);
    const authorization = state.createAuthorization(account, clientId, 'read_write', provider);
    const tokens = state.issueTokens(authorization);
    return reply.code(201).send({
      sub: account.sub,
      account_id: account.sub,
      email: account.email,
      profile_id: account.profileId,
      access_token: tokens.accessToken,
      refresh_token: tokens.refreshToken,
    });
  });

  app.get('/_sim/state', async () => state.snapshot());

  app.get('/_sim/issued-secrets', async () => state.issuedSecrets());

  app.get('/_sim/requests', async () => state.requestLog.entries());

  app.get('/_sim/faults', async () => state.faults.list());

  app.post('/_sim/faults', async (request, reply) => {
    const parsed = faultsSchema.safeParse(request.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    state.faults.add([parsed.data].flat());
    return reply.code(201).send(state.faults.list());
  });

  app.delete('/_sim/faults', async (_request, reply) => {
    state.faults.clear();
    return reply.code(204).send();
  });

  app.put('/_sim/rate-limit', async (request, reply) => {
    const parsed = rateLimitSchema.safeParse(request.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    state.rateLimiter.limit = parsed.data;
    return parsed.data;
  });

  app.post('/_sim/clock/advance', async (request, reply) => {
    const parsed = advanceClockSchema.safeParse(request.body);
    if (!parsed.success) return sendInvalid(reply, parsed.error);
    state.advanceClock(parsed.data.seconds);
    return { now: new Date(state.now()).toISOString() };
  });

  app.post('/_sim/reset', async (_request, reply) => {
    state.reset();
    return reply.code(204).send();
  });
}
