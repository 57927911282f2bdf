import got, { RequestError, type Got, type Response } from 'got';
import type { z } from 'zod';
import {
  CronofyError,
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
}

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
    const url = new URL('/oauth/authorize', this.hosts.app);
    const query = url.searchParams;
    query.set('response_type', 'code');
    query.set('client_id', this.options.clientId);
    query.set('redirect_uri', params.redirectUri);
    query.set('scope', params.scope.join(' '));
    query.set('state', params.state);
    if (params.providerName) query.set('provider_name', params.providerName);
    if (params.avoidLinking) query.set('avoid_linking', 'true');
    if (params.delegatedScope) query.set('delegated_scope', params.delegatedScope.join(' '));
    return url.toString();
  }

  /** The administrator's Enterprise Connect consent page; `delegatedScope` is what the service account may grant. */
  enterpriseAuthorizationUrl(params: {
    redirectUri: string;
    scope: readonly string[];
    delegatedScope: readonly string[];
    state: string;
    providerName?: string;
  }): string {
    const url = new URL('/enterprise_connect/oauth/authorize', this.hosts.app);
    const query = url.searchParams;
    query.set('response_type', 'code');
    query.set('client_id', this.options.clientId);
    query.set('redirect_uri', params.redirectUri);
    query.set('scope', params.scope.join(' '));
    query.set('delegated_scope', params.delegatedScope.join(' '));
    query.set('state', params.state);
    if (params.providerName) query.set('provider_name', params.providerName);
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
    await this.send(() =>
      this.http.post(new URL('/v1/service_account_authorizations', this.hosts.api), {
        headers: { authorization: `Bearer ${serviceAccountToken}` },
        json: body.length === 1 ? body[0] : { service_account_authorizations: body },
      }),
    );
  }

  async requestAccessToken(code: string, redirectUri: string): Promise<AccessTokenResponse> {
    const response = await this.postOAuth('/oauth/token', {
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
    });
    return parseBody(response, AccessTokenResponse, 'token');
  }

  async refreshAccessToken(refreshToken: string): Promise<AccessTokenResponse> {
    const response = await this.postOAuth('/oauth/token', {
      grant_type: 'refresh_token',
      refresh_token: refreshToken,
    });
    return parseBody(response, AccessTokenResponse, 'token');
  }

  /** Idempotent: Cronofy answers 200 whether the token was live, already revoked or unknown (RFC 7009). */
  async revokeAuthorization(target: RevokeTarget): Promise<void> {
    await this.postOAuth('/oauth/token/revoke', target);
  }

  async userInfo(accessToken: string): Promise<UserInfo> {
    const response = await this.send(() =>
      this.http.get(new URL('/v1/userinfo', this.hosts.api), {
        headers: { authorization: `Bearer ${accessToken}` },
      }),
    );
    return parseBody(response, UserInfo, 'userinfo');
  }

  private postOAuth(path: string, body: Record<string, string>): Promise<Response<string>> {
    return this.send(() =>
      this.http.post(new URL(path, this.hosts.api), {
        json: { client_id: this.options.clientId, client_secret: this.options.clientSecret, ...body },
      }),
    );
  }

  private async send(request: () => Promise<Response<string>>): Promise<Response<string>> {
    let response: Response<string>;
    try {
      response = await request();
    } catch (error) {
      const reason = error instanceof RequestError ? error.code : 'request failed';
      throw new CronofyUnavailableError(
        `Cronofy could not be reached (${reason})`,
        undefined,
        undefined,
        true,
      );
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return response;
    throw errorFor(response);
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
