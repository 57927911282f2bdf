import { EnterpriseState, type EnterpriseRecords } from './enterpriseState.js';
import { FaultQueue } from './faults.js';
import { SlidingWindowRateLimiter, type RateLimit } from './rateLimit.js';
import { RequestLog } from './requestLog.js';
import { constantTimeEqual, randomAlphanumeric, randomId } from './secrets.js';
import type {
  Account,
  Authorization,
  IndividualRecords,
  IssuedCode,
  IssuedTokens,
  ProviderName,
  SimulatorClient,
} from './model.js';

export type {
  Account,
  Authorization,
  IssuedCode,
  IssuedTokens,
  ProviderName,
  SimulatorClient,
} from './model.js';

/** Everything the simulated Cronofy knows, as plain data (persistence.ts keeps it in a file). */
export interface SimulatorRecords {
  version: 1;
  clockOffsetMs: number;
  accounts: Account[];
  authorizations: Authorization[];
  codes: Array<[string, AuthorizationCode]>;
  accessTokens: Array<[string, AccessToken]>;
  authorizationIdByRefreshToken: Array<[string, string]>;
  issued: { codes: string[]; accessTokens: string[]; refreshTokens: string[] };
  enterprise: EnterpriseRecords;
}

interface AuthorizationCode {
  clientId: string;
  redirectUri: string;
  authorizationId: string;
  issuedAt: number;
  expiresAt: number;
  used: boolean;
}

interface AccessToken {
  authorizationId: string;
  expiresAt: number;
}

const codeLifetimeMs = 10 * 60 * 1000;
const codeLength = 32;
const tokenLength = 48;

/** Everything the simulated Cronofy knows. Route handlers translate HTTP to and from these methods. */
export class SimulatorState implements IndividualRecords {
  readonly faults = new FaultQueue();
  readonly requestLog = new RequestLog();
  readonly rateLimiter: SlidingWindowRateLimiter;
  readonly enterprise: EnterpriseState;

  #clockOffsetMs = 0;
  #accounts = new Map<string, Account>();
  #subByEmail = new Map<string, string>();
  #authorizations = new Map<string, Authorization>();
  #codes = new Map<string, AuthorizationCode>();
  #accessTokens = new Map<string, AccessToken>();
  #authorizationIdByRefreshToken = new Map<string, string>();
  #issued = { codes: [] as string[], accessTokens: [] as string[], refreshTokens: [] as string[] };
  #changes = 0;

  constructor(
    private readonly clients: readonly SimulatorClient[],
    private readonly accessTokenTtlSeconds: number,
    private readonly initialRateLimit: RateLimit,
    serviceAccountTokenTtlSeconds = 1800,
  ) {
    this.rateLimiter = new SlidingWindowRateLimiter({ ...initialRateLimit }, () => this.now());
    this.enterprise = new EnterpriseState(this, serviceAccountTokenTtlSeconds);
  }

  /**
   * Counts what may have changed the records: every request served and every callback delivered. Persistence
   * writes the records only when this moved, so an idle simulator costs nothing.
   */
  markChanged(): void {
    this.#changes += 1;
  }

  get changes(): number {
    return this.#changes;
  }

  /** Wall-clock time, shifted by `advanceClock` so tests can expire codes and tokens without waiting. */
  now(): number {
    return Date.now() + this.#clockOffsetMs;
  }

  advanceClock(seconds: number): void {
    this.#clockOffsetMs += seconds * 1000;
  }

  /** Clears every account, authorization, secret, fault and log; clients stay registered. */
  reset(): void {
    this.#clockOffsetMs = 0;
    this.#accounts.clear();
    this.#subByEmail.clear();
    this.#authorizations.clear();
    this.#codes.clear();
    this.#accessTokens.clear();
    this.#authorizationIdByRefreshToken.clear();
    this.#issued = { codes: [], accessTokens: [], refreshTokens: [] };
    this.faults.clear();
    this.requestLog.clear();
    this.rateLimiter.clear();
    this.rateLimiter.limit = { ...this.initialRateLimit };
    this.enterprise.reset();
  }

  /** What the simulated Cronofy knows, as plain data: faults, the request log and rate limits are left out. */
  exportRecords(): SimulatorRecords {
    return {
      version: 1,
      clockOffsetMs: this.#clockOffsetMs,
      accounts: [...this.#accounts.values()],
      authorizations: [...this.#authorizations.values()],
      codes: [...this.#codes],
      accessTokens: [...this.#accessTokens],
      authorizationIdByRefreshToken: [...this.#authorizationIdByRefreshToken],
      issued: this.#issued,
      enterprise: this.enterprise.exportRecords(),
    };
  }

  /** Replaces everything it knows with a snapshot taken earlier (by this version of the simulator). */
  importRecords(snapshot: SimulatorRecords): void {
    this.reset();
    this.#clockOffsetMs = snapshot.clockOffsetMs;
    for (const account of snapshot.accounts) {
      this.#accounts.set(account.sub, account);
      this.#subByEmail.set(account.email.toLowerCase(), account.sub);
    }
    for (const authorization of snapshot.authorizations)
      this.#authorizations.set(authorization.id, authorization);
    this.#codes = new Map(snapshot.codes);
    this.#accessTokens = new Map(snapshot.accessTokens);
    this.#authorizationIdByRefreshToken = new Map(snapshot.authorizationIdByRefreshToken);
    this.#issued = snapshot.issued;
    this.enterprise.importRecords(snapshot.enterprise, (id) => {
      const authorization = this.#authorizations.get(id);
      if (!authorization)
        throw new Error(`the snapshot's service accounts name an unknown authorization ${id}`);
      return authorization;
    });
  }

  // Clients

  findClient(clientId: string): SimulatorClient | undefined {
    return this.clients.find((client) => client.clientId === clientId);
  }

  authenticateClient(clientId: string, clientSecret: string): SimulatorClient | undefined {
    const client = this.findClient(clientId);
    return client && constantTimeEqual(client.clientSecret, clientSecret) ? client : undefined;
  }

  // Accounts

  findOrCreateAccount(email: string): Account {
    const existingSub = this.#subByEmail.get(email.toLowerCase());
    const existing = existingSub === undefined ? undefined : this.#accounts.get(existingSub);
    if (existing) return existing;
    const account: Account = {
      sub: randomId('acc'),
      email,
      profileId: randomId('pro'),
      createdAt: this.now(),
    };
    this.#accounts.set(account.sub, account);
    this.#subByEmail.set(email.toLowerCase(), account.sub);
    return account;
  }

  findAccount(sub: string): Account | undefined {
    return this.#accounts.get(sub);
  }

  /** Accounts that have ever authorized the client, oldest first. */
  accountsOfClient(clientId: string): Account[] {
    const subs = new Set(this.#authorizationsOfClient(clientId).map((authorization) => authorization.sub));
    return [...this.#accounts.values()].filter((account) => subs.has(account.sub));
  }

  /** The account whose authorization for the client was revoked last: the one a downgrade is re-authorizing. */
  mostRecentlyRevokedAccount(clientId: string): Account | undefined {
    const revoked = this.#authorizationsOfClient(clientId).filter((authorization) => authorization.revoked);
    const latest = revoked.sort((a, b) => (b.revokedAt ?? 0) - (a.revokedAt ?? 0))[0];
    return latest && this.#accounts.get(latest.sub);
  }

  // Authorizations

  createAuthorization(
    account: Account,
    clientId: string,
    scope: string,
    providerName: ProviderName,
    serviceAccountId?: string,
  ): Authorization {
    const authorization: Authorization = {
      id: randomId('aut'),
      sub: account.sub,
      clientId,
      scope,
      providerName,
      providerService: providerName,
      serviceAccountId,
      revoked: false,
      createdAt: this.now(),
    };
    this.#authorizations.set(authorization.id, authorization);
    return authorization;
  }

  accountOf(authorization: Authorization): Account {
    const account = this.#accounts.get(authorization.sub);
    if (!account) throw new Error(`authorization ${authorization.id} has no account`);
    return account;
  }

  /** Revokes the authorization the token belongs to, if it is the client's. Unknown tokens change nothing. */
  revokeByToken(clientId: string, token: string): void {
    const accessToken = this.#accessTokens.get(token);
    const authorizationId =
      this.#authorizationIdByRefreshToken.get(token) ??
      (accessToken && accessToken.expiresAt > this.now() ? accessToken.authorizationId : undefined);
    const authorization =
      authorizationId === undefined ? undefined : this.#authorizations.get(authorizationId);
    if (authorization?.clientId === clientId) this.revokeAuthorization(authorization);
  }

  revokeBySub(clientId: string, sub: string): void {
    for (const authorization of this.#authorizationsOfClient(clientId)) {
      if (authorization.sub === sub) this.revokeAuthorization(authorization);
    }
  }

  revokeAuthorization(authorization: Authorization): void {
    if (authorization.revoked) return;
    authorization.revoked = true;
    authorization.revokedAt = this.now();
  }

  #authorizationsOfClient(clientId: string): Authorization[] {
    return [...this.#authorizations.values()].filter((authorization) => authorization.clientId === clientId);
  }

  // Codes

  issueCode(authorization: Authorization, redirectUri: string): string {
    const { code, issuedAt, expiresAt } = this.newCode();
    this.#codes.set(code, {
      clientId: authorization.clientId,
      redirectUri,
      authorizationId: authorization.id,
      issuedAt,
      expiresAt,
      used: false,
    });
    return code;
  }

  /** A fresh single-use code, recorded for `/_sim/issued-secrets`; Enterprise Connect codes come from here too. */
  newCode(): IssuedCode {
    const code = randomAlphanumeric(codeLength);
    const issuedAt = this.now();
    this.#issued.codes.push(code);
    return { code, issuedAt, expiresAt: issuedAt + codeLifetimeMs };
  }

  /** A fresh access or refresh token, recorded for `/_sim/issued-secrets`. */
  newToken(kind: 'access' | 'refresh'): string {
    const token = randomAlphanumeric(tokenLength);
    (kind === 'access' ? this.#issued.accessTokens : this.#issued.refreshTokens).push(token);
    return token;
  }

  /** Uses up a valid code; returns undefined for an unknown, used, expired or mismatched one. */
  redeemCode(code: string, clientId: string, redirectUri: string): Authorization | undefined {
    const issued = this.#codes.get(code);
    if (!issued || issued.used || issued.expiresAt <= this.now()) return undefined;
    if (issued.clientId !== clientId || issued.redirectUri !== redirectUri) return undefined;
    const authorization = this.#authorizations.get(issued.authorizationId);
    if (!authorization || authorization.revoked) return undefined;
    issued.used = true;
    return authorization;
  }

  // Tokens

  issueTokens(authorization: Authorization): IssuedTokens {
    if (authorization.refreshToken === undefined) {
      authorization.refreshToken = this.newToken('refresh');
      this.#authorizationIdByRefreshToken.set(authorization.refreshToken, authorization.id);
    }
    const accessToken = this.newToken('access');
    this.#accessTokens.set(accessToken, {
      authorizationId: authorization.id,
      expiresAt: this.now() + this.accessTokenTtlSeconds * 1000,
    });
    return {
      accessToken,
      refreshToken: authorization.refreshToken,
      expiresIn: this.accessTokenTtlSeconds,
    };
  }

  /** The live authorization of the client that the refresh token belongs to. */
  findRefreshableAuthorization(clientId: string, refreshToken: string): Authorization | undefined {
    const authorizationId = this.#authorizationIdByRefreshToken.get(refreshToken);
    const authorization =
      authorizationId === undefined ? undefined : this.#authorizations.get(authorizationId);
    return authorization && !authorization.revoked && authorization.clientId === clientId
      ? authorization
      : undefined;
  }

  /** The authorization behind an unexpired access token of a live authorization. */
  authorizeAccessToken(token: string): Authorization | undefined {
    const accessToken = this.#accessTokens.get(token);
    if (!accessToken || accessToken.expiresAt <= this.now()) return undefined;
    const authorization = this.#authorizations.get(accessToken.authorizationId);
    return authorization && !authorization.revoked ? authorization : undefined;
  }

  /** The client an access token was issued to, valid or not: rate limits count every request. */
  clientIdOfAccessToken(token: string): string | undefined {
    const accessToken = this.#accessTokens.get(token);
    if (!accessToken) return this.enterprise.clientIdOfAccessToken(token);
    return this.#authorizations.get(accessToken.authorizationId)?.clientId;
  }

  // Inspection, for the control API. Never includes a secret.

  snapshot() {
    const now = this.now();
    const iso = (time: number | undefined) => (time === undefined ? null : new Date(time).toISOString());
    // Grouped once: with 50,000 Enterprise users a per-account filter would be quadratic.
    const authorizationsBySub = new Map<string, Authorization[]>();
    for (const authorization of this.#authorizations.values()) {
      const ofSub = authorizationsBySub.get(authorization.sub) ?? [];
      ofSub.push(authorization);
      authorizationsBySub.set(authorization.sub, ofSub);
    }
    return {
      accounts: [...this.#accounts.values()].map((account) => ({
        sub: account.sub,
        account_id: account.sub,
        email: account.email,
        profile_id: account.profileId,
        created_at: iso(account.createdAt),
        authorizations: (authorizationsBySub.get(account.sub) ?? []).map((authorization) => ({
          id: authorization.id,
          client_id: authorization.clientId,
          scope: authorization.scope,
          provider_name: authorization.providerName,
          provider_service: authorization.providerService,
          service_account_id: authorization.serviceAccountId ?? null,
          revoked: authorization.revoked,
          created_at: iso(authorization.createdAt),
          revoked_at: iso(authorization.revokedAt),
        })),
      })),
      codes: [...this.#codes.values()].map((code) => ({
        client_id: code.clientId,
        redirect_uri: code.redirectUri,
        authorization_id: code.authorizationId,
        issued_at: iso(code.issuedAt),
        used: code.used,
        expired: code.expiresAt <= now,
      })),
    };
  }

  issuedSecrets() {
    return {
      codes: [...this.#issued.codes],
      access_tokens: [...this.#issued.accessTokens],
      refresh_tokens: [...this.#issued.refreshTokens],
    };
  }
}
