import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import got, { RequestError, type Got, type Response } from 'got';
import type { z } from 'zod';
import {
  CronofyError,
  CronofyClientCredentialsError,
  CronofyGrantError,
  CronofyRateLimitedError,
  CronofyRequestRejectedError,
  CronofyResponseError,
  CronofyUnauthorizedError,
  CronofyUnavailableError,
} from './errors.js';
import { cronofyHosts, type CronofyHosts, type DataCentre } from './hosts.js';
import { AccessTokenResponse, OAuthErrorBody, UserInfo } from './schemas.js';

export interface CronofyClientOptions {
  clientId: string;
  clientSecret: string;
  /** A data centre, or explicit hosts (the simulator, a proxy). */
  dataCentre?: DataCentre;
  hosts?: CronofyHosts;
  timeoutMs?: number;
  /** Called after every HTTP call (metrics); must not throw. */
  onCall?: (call: CronofyCall) => void;
}

/** Cronofy's API endpoints this client calls, named as the simulator names them. */
export type CronofyEndpoint = 'token' | 'revoke' | 'userinfo' | 'service_account_authorizations';

const ENDPOINT_PATHS: Record<CronofyEndpoint, string> = {
  token: '/oauth/token',
  revoke: '/oauth/token/revoke',
  userinfo: '/v1/userinfo',
  service_account_authorizations: '/v1/service_account_authorizations',
};

/** What one HTTP call did. Nothing of its URL query, body or headers: they carry tokens and codes. */
export interface CronofyCall {
  endpoint: CronofyEndpoint;
  method: 'GET' | 'POST';
  /** Undefined when Cronofy could not be reached. */
  status?: number;
  durationMs: number;
  /** Retry-After of a 429 or 5xx, when Cronofy sent one. */
  retryAfterMs?: number;
}

const tracer = trace.getTracer('cronofy-downgrade/cronofy');

export interface AuthorizationUrlParams {
  redirectUri: string;
  scope: readonly string[];
  state: string;
  /** Skips Cronofy's provider picker, e.g. `google_free_busy`. */
  providerName?: string;
  avoidLinking?: boolean;
  delegatedScope?: readonly string[];
}

export type RevokeTarget = { token: string } | { sub: string };

/**
 * Cronofy's OAuth and account endpoints over HTTP. Knows nothing of Temporal: every failure is a typed
 * `CronofyError` saying whether a retry can help, and retries are left to the caller.
 */
export class CronofyClient {
  readonly hosts: CronofyHosts;
  private readonly http: Got;

  constructor(private readonly options: CronofyClientOptions) {
    this.hosts = options.hosts ?? cronofyHosts(options.dataCentre ?? 'us');
    this.http = got.extend({
      retry: { limit: 0 },
      throwHttpErrors: false,
      timeout: { request: options.timeoutMs ?? 20_000 },
      headers: { 'user-agent': 'cronofy-downgrade' },
    });
  }

  authorizationUrl(params: AuthorizationUrlParams): string {
    return this.consentUrl('/oauth/authorize', {
      redirect_uri: params.redirectUri,
      scope: params.scope.join(' '),
      state: params.state,
      provider_name: params.providerName,
      avoid_linking: params.avoidLinking ? 'true' : undefined,
      delegated_scope: params.delegatedScope?.join(' '),
    });
  }

  /** The administrator's Enterprise Connect consent page; `delegatedScope` is what the service account may grant. */
  enterpriseAuthorizationUrl(params: {
    redirectUri: string;
    scope: readonly string[];
    delegatedScope: readonly string[];
    state: string;
    providerName?: string;
  }): string {
    return this.consentUrl('/enterprise_connect/oauth/authorize', {
      redirect_uri: params.redirectUri,
      scope: params.scope.join(' '),
      delegated_scope: params.delegatedScope.join(' '),
      state: params.state,
      provider_name: params.providerName,
    });
  }

  /** A consent page's URL: the code flow for this client, with the given parameters that have a value. */
  private consentUrl(path: string, params: Record<string, string | undefined>): string {
    const url = new URL(path, this.hosts.app);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', this.options.clientId);
    for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
    return url.toString();
  }

  /**
   * Asks Cronofy to grant the service account access to users (1 to 50 per call). Answers 202; each user's access
   * arrives later as a POST to their `callback_url`.
   */
  async requestServiceAccountAuthorizations(
    serviceAccountToken: string,
    entries: ReadonlyArray<{ email: string; callbackUrl: string; scope: string; state: string }>,
  ): Promise<void> {
    if (entries.length < 1 || entries.length > 50) throw new RangeError('1 to 50 users per request');
    const body = entries.map((entry) => ({
      email: entry.email,
      callback_url: entry.callbackUrl,
      scope: entry.scope,
      state: entry.state,
    }));
    await this.send('service_account_authorizations', 'POST', (url) =>
      this.http.post(url, {
        headers: { authorization: `Bearer ${serviceAccountToken}` },
        json: body.length === 1 ? body[0] : { service_account_authorizations: body },
      }),
    );
  }

  async requestAccessToken(code: string, redirectUri: string): Promise<AccessTokenResponse> {
    const response = await this.postOAuth('token', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
    });
    return parseBody(response, AccessTokenResponse, 'token');
  }

  async refreshAccessToken(refreshToken: string): Promise<AccessTokenResponse> {
    const response = await this.postOAuth('token', {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
    });
    return parseBody(response, AccessTokenResponse, 'token');
  }

  /** Idempotent: Cronofy answers 200 whether the token was live, already revoked or unknown (RFC 7009). */
  async revokeAuthorization(target: RevokeTarget): Promise<void> {
    await this.postOAuth('revoke', target);
  }

  async userInfo(accessToken: string): Promise<UserInfo> {
    const response = await this.send('userinfo', 'GET', (url) =>
      this.http.get(url, {
        headers: { authorization: `Bearer ${accessToken}` },
      }),
    );
    return parseBody(response, UserInfo, 'userinfo');
  }

  private postOAuth(endpoint: CronofyEndpoint, body: Record<string, string>): Promise<Response<string>> {
    return this.send(endpoint, 'POST', (url) =>
      this.http.post(url, {
        json: { client_id: this.options.clientId, client_secret: this.options.clientSecret, ...body },
      }),
    );
  }

  /**
   * One HTTP call, in a client span (a child of the activity's RunActivity span when tracing is on) whose
   * attributes are the endpoint, method, host and status: never the query, body or headers.
   */
  private async send(
    endpoint: CronofyEndpoint,
    method: 'GET' | 'POST',
    request: (url: URL) => Promise<Response<string>>,
  ): Promise<Response<string>> {
    const url = new URL(ENDPOINT_PATHS[endpoint], this.hosts.api);
    return tracer.startActiveSpan(
      `Cronofy ${method} ${endpoint}`,
      {
        kind: SpanKind.CLIENT,
        attributes: {
          'cronofy.endpoint': endpoint,
          'http.request.method': method,
          'url.path': url.pathname,
          'server.address': url.hostname,
        },
      },
      async (span) => {
        const started = performance.now();
        const report = (status: number | undefined, retryAfter?: number) => {
          try {
            this.options.onCall?.({
              endpoint,
              method,
              status,
              durationMs: performance.now() - started,
              retryAfterMs: retryAfter,
            });
          } catch {
            // Metrics never fail a call.
          }
        };
        try {
          let response: Response<string>;
          try {
            response = await request(url);
          } catch (error) {
            const reason = error instanceof RequestError ? error.code : 'request failed';
            report(undefined);
            span.setAttribute('error.type', reason);
            span.setStatus({
              code: SpanStatusCode.ERROR,
              message: `Cronofy could not be reached (${reason})`,
            });
            throw new CronofyUnavailableError(
              `Cronofy could not be reached (${reason})`,
              undefined,
              undefined,
              true,
            );
          }
          const status = response.statusCode;
          span.setAttribute('http.response.status_code', status);
          report(status, status === 429 || status >= 500 ? retryAfterMs(response) : undefined);
          if (status >= 200 && status < 300) return response;
          const error = errorFor(response);
          span.setAttribute('error.type', error.name);
          span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }
}

function errorFor(response: Response<string>): CronofyError {
  const status = response.statusCode;
  const errorKey = oauthErrorKey(response.body);
  const what = `Cronofy answered ${status}${errorKey ? ` (${errorKey})` : ''} to ${response.requestUrl.pathname}`;
  if (status === 429) {
    return new CronofyRateLimitedError(what, status, errorKey, true, retryAfterMs(response));
  }
  if (status >= 500) return new CronofyUnavailableError(what, status, errorKey, true, retryAfterMs(response));
  if (status === 401 && response.requestUrl.pathname.startsWith('/oauth/token')) {
    return new CronofyClientCredentialsError(
      `${what}: Cronofy refused the client credentials (CRONOFY_CLIENT_ID, CRONOFY_CLIENT_SECRET)`,
      status,
      errorKey,
      false,
    );
  }
  if (status === 401) return new CronofyUnauthorizedError(what, status, errorKey, true);
  if (status === 400) return new CronofyGrantError(what, status, errorKey, false);
  return new CronofyRequestRejectedError(what, status, errorKey, false);
}

function oauthErrorKey(body: string): string | undefined {
  try {
    const parsed = OAuthErrorBody.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data.error : undefined;
  } catch {
    return undefined;
  }
}

function retryAfterMs(response: Response<string>): number | undefined {
  const header = response.headers['retry-after'];
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function parseBody<T extends z.ZodType>(response: Response<string>, schema: T, what: string): z.infer<T> {
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    throw new CronofyResponseError(
      `Cronofy's ${what} response is not JSON`,
      response.statusCode,
      undefined,
      false,
    );
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((issue) => issue.path.join('.') || '(root)').join(', ');
    throw new CronofyResponseError(
      `Cronofy's ${what} response lacks or mistypes: ${fields}`,
      response.statusCode,
      undefined,
      false,
    );
  }
  return parsed.data;
}
