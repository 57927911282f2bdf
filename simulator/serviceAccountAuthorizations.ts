import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { bearerTokenOf, sendInvalidToken } from './bearer.js';
import type { ServiceAccount } from './enterpriseState.js';
import type { ServiceAccountCallbacks, UserAccessRequest } from './serviceAccountCallbacks.js';
import type { SimulatorState } from './state.js';

const maxBatchSize = 50;

const entrySchema = z.object({
  email: z.email(),
  callback_url: z.url({ protocol: /^https?$/ }),
  scope: z.string().trim().min(1),
  state: z.string().optional(),
});
type Entry = z.infer<typeof entrySchema>;

const batchSchema = z.object({
  service_account_authorizations: z.array(entrySchema).min(1).max(maxBatchSize),
});

const singleFields = Object.keys(entrySchema.shape);

/** Only the `accounts` scopes let a service account act for users; `resources` is for resource calendars. */
const userAccessScopes = ['service_account/accounts/manage', 'service_account/accounts/unrestricted_access'];

interface FieldError {
  key: string;
  description: string;
}
type ValidationErrors = Record<string, FieldError[]>;

const descriptions: Record<string, string> = {
  email: 'must be an email address',
  callback_url: 'must be an http or https URL',
  scope: 'must be a space-separated list of scopes',
  state: 'must be a string',
};

/** `service_account_authorizations[3].email`, the way Rails names errors of nested records. */
function fieldName(path: readonly PropertyKey[]): string {
  let name = '';
  for (const segment of path) {
    if (typeof segment === 'number') name += `[${segment}]`;
    else name += name ? `.${String(segment)}` : String(segment);
  }
  return name;
}

function valueAt(body: unknown, path: readonly PropertyKey[]): unknown {
  let value = body;
  for (const segment of path) {
    value =
      value !== null && typeof value === 'object'
        ? (value as Record<PropertyKey, unknown>)[segment]
        : undefined;
  }
  return value;
}

function fieldErrorOf(issue: z.core.$ZodIssue, body: unknown): FieldError {
  const blank = issue.code === 'too_small' && issue.origin === 'string';
  if (blank || valueAt(body, issue.path) === undefined)
    return { key: 'errors.required', description: 'required' };
  if (issue.code === 'too_small')
    return { key: 'errors.too_short', description: 'must contain at least 1 entry' };
  if (issue.code === 'too_big') {
    return { key: 'errors.too_long', description: `must contain at most ${maxBatchSize} entries` };
  }
  return { key: 'errors.invalid', description: descriptions[String(issue.path.at(-1))] ?? 'invalid' };
}

function addError(errors: ValidationErrors, field: string, error: FieldError): void {
  (errors[field] ??= []).push(error);
}

function zodErrors(error: z.ZodError, body: unknown): ValidationErrors {
  const errors: ValidationErrors = {};
  for (const issue of error.issues) addError(errors, fieldName(issue.path), fieldErrorOf(issue, body));
  return errors;
}

type ParsedRequest = { entries: Entry[] } | { errors: ValidationErrors };

/** A requested scope must be covered by what the administrator delegated to the service account. */
function checkDelegatedScope(
  entries: Entry[],
  serviceAccount: ServiceAccount,
  fieldPrefix: (index: number) => string,
): ParsedRequest {
  const delegated = new Set(serviceAccount.delegatedScope.split(' '));
  const errors: ValidationErrors = {};
  entries.forEach((entry, index) => {
    const undelegated = entry.scope.split(/\s+/).filter((scope) => !delegated.has(scope));
    if (undelegated.length > 0) {
      addError(errors, `${fieldPrefix(index)}scope`, {
        key: 'errors.invalid',
        description: `not within the delegated scope: ${undelegated.join(' ')}`,
      });
    }
  });
  return Object.keys(errors).length > 0 ? { errors } : { entries };
}

/** One user `{email, callback_url, scope, state}` or a batch of 1 to 50 of them, never both in one body. */
function parseRequest(body: unknown, serviceAccount: ServiceAccount): ParsedRequest {
  const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {};
  if (!('service_account_authorizations' in fields)) {
    const single = entrySchema.safeParse(fields);
    if (!single.success) return { errors: zodErrors(single.error, fields) };
    return checkDelegatedScope([single.data], serviceAccount, () => '');
  }
  if (singleFields.some((field) => field in fields)) {
    const description = `cannot be combined with ${singleFields.join(', ')}`;
    return { errors: { service_account_authorizations: [{ key: 'errors.invalid', description }] } };
  }
  const batch = batchSchema.safeParse(fields);
  if (!batch.success) return { errors: zodErrors(batch.error, fields) };
  return checkDelegatedScope(
    batch.data.service_account_authorizations,
    serviceAccount,
    (index) => `service_account_authorizations[${index}].`,
  );
}

function sendValidationErrors(reply: FastifyReply, errors: ValidationErrors): FastifyReply {
  return reply.code(422).send({ errors });
}

/**
 * Request User Access: `POST /v1/service_account_authorizations` with the service account's bearer token.
 * Answers 202 at once; each user's access arrives later as a callback.
 */
export function registerServiceAccountAuthorizationsRoute(
  app: FastifyInstance,
  state: SimulatorState,
  callbacks: ServiceAccountCallbacks,
): void {
  app.post(
    '/v1/service_account_authorizations',
    {
      config: { endpoint: 'service_account_authorizations' },
      // An unrecognised token is 401 before the body is read: the caller refreshes and retries, whatever it sent.
      onRequest: async (request, reply) => {
        const token = bearerTokenOf(request);
        const recognised =
          token !== undefined &&
          (state.enterprise.authorizeAccessToken(token) !== undefined ||
            state.authorizeAccessToken(token) !== undefined);
        if (!recognised) return sendInvalidToken(reply, token);
      },
    },
    async (request, reply) => {
      // onRequest let through only recognised tokens: one that is not a service account's is an account's, which
      // is recognised but lacks the privilege.
      const serviceAccount = state.enterprise.authorizeAccessToken(bearerTokenOf(request) ?? '');
      if (!serviceAccount) return reply.code(403).send();
      if (!serviceAccount.scope.split(' ').some((scope) => userAccessScopes.includes(scope))) {
        return reply.code(403).send();
      }

      const parsed = parseRequest(request.body, serviceAccount);
      if ('errors' in parsed) return sendValidationErrors(reply, parsed.errors);
      const requests: UserAccessRequest[] = parsed.entries.map((entry) => ({
        email: entry.email,
        callbackUrl: entry.callback_url,
        scope: entry.scope.split(/\s+/).join(' '),
        state: entry.state,
      }));
      callbacks.schedule(serviceAccount, requests);
      return reply.code(202).send();
    },
  );
}
