import { setMaxListeners } from 'node:events';
import { OutcomeScript } from './enterpriseOutcomes.js';
import { randomId } from './secrets.js';
import type { Authorization, IndividualRecords, IssuedTokens, ProviderName } from './model.js';

/** An Enterprise Connect authorization by a domain administrator. */
export interface ServiceAccount {
  id: string;
  clientId: string;
  domain: string;
  /** The provider users are connected with: `*_free_busy` when the administrator chose Free/Busy. */
  providerName: ProviderName;
  scope: string;
  /** The user-level scopes the service account may grant, space-separated. */
  delegatedScope: string;
  /** Issued with the first access token; stays the same across refreshes. */
  refreshToken?: string;
  revoked: boolean;
  createdAt: number;
  revokedAt?: number;
}

export interface EnterpriseRecords {
  serviceAccountTokenTtlSeconds: number;
  serviceAccounts: ServiceAccount[];
  codes: Array<[string, AdminCode]>;
  accessTokens: Array<[string, ServiceAccountAccessToken]>;
  serviceAccountIdByRefreshToken: Array<[string, string]>;
  grantsByServiceAccount: Array<[string, string[]]>;
  latestGrantBySub: Array<[string, string]>;
}

export type NewServiceAccount = Pick<
  ServiceAccount,
  'clientId' | 'domain' | 'providerName' | 'scope' | 'delegatedScope'
>;

interface AdminCode {
  clientId: string;
  redirectUri: string;
  serviceAccountId: string;
  expiresAt: number;
  used: boolean;
}

interface ServiceAccountAccessToken {
  serviceAccountId: string;
  expiresAt: number;
}

export interface CallbackCounts {
  /** Scheduled and not yet finished: waiting for their delay, queued or being sent. */
  pending: number;
  delivered: number;
  /** Every attempt failed or timed out. */
  failed: number;
  /** Scripted `no_callback`, or the service account was revoked before the callback was due. */
  withheld: number;
}

/** Callbacks scheduled since the last reset. Aborting the signal drops them all. */
export interface DeliverySession {
  signal: AbortSignal;
  counts: CallbackCounts;
}

export interface UserSummary {
  email: string;
  sub: string;
  provider_name: ProviderName;
  scope: string;
  revoked: boolean;
  service_account_id: string | null;
}

function newDeliverySession(): { controller: AbortController; session: DeliverySession } {
  const controller = new AbortController();
  // Every scheduled callback listens to it; thousands of listeners are expected, not a leak.
  setMaxListeners(0, controller.signal);
  const counts = { pending: 0, delivered: 0, failed: 0, withheld: 0 };
  return { controller, session: { signal: controller.signal, counts } };
}

const iso = (time: number | undefined) => (time === undefined ? null : new Date(time).toISOString());

/**
 * The Enterprise Connect side of the simulated Cronofy: service accounts, their codes and tokens, and the user
 * authorizations granted through them (ordinary authorizations of `SimulatorState`, tagged with the service account).
 */
export class EnterpriseState {
  readonly outcomes = new OutcomeScript();
  serviceAccountTokenTtlSeconds: number;

  #serviceAccounts = new Map<string, ServiceAccount>();
  #codes = new Map<string, AdminCode>();
  #accessTokens = new Map<string, ServiceAccountAccessToken>();
  #serviceAccountIdByRefreshToken = new Map<string, string>();
  #grantsByServiceAccount = new Map<string, Authorization[]>();
  /** Insertion-ordered, so the state view pages through users in the order they were first connected. */
  #latestGrantBySub = new Map<string, Authorization>();
  #deliveries = newDeliverySession();

  constructor(
    private readonly state: IndividualRecords,
    private readonly initialTokenTtlSeconds: number,
  ) {
    this.serviceAccountTokenTtlSeconds = initialTokenTtlSeconds;
  }

  reset(): void {
    this.serviceAccountTokenTtlSeconds = this.initialTokenTtlSeconds;
    this.outcomes.reset();
    this.#serviceAccounts.clear();
    this.#codes.clear();
    this.#accessTokens.clear();
    this.#serviceAccountIdByRefreshToken.clear();
    this.#grantsByServiceAccount.clear();
    this.#latestGrantBySub.clear();
    this.abortDeliveries();
  }

  /** Service accounts, their codes and tokens, and their users' grants (by authorization id). */
  exportRecords(): EnterpriseRecords {
    return {
      serviceAccountTokenTtlSeconds: this.serviceAccountTokenTtlSeconds,
      serviceAccounts: [...this.#serviceAccounts.values()],
      codes: [...this.#codes],
      accessTokens: [...this.#accessTokens],
      serviceAccountIdByRefreshToken: [...this.#serviceAccountIdByRefreshToken],
      grantsByServiceAccount: [...this.#grantsByServiceAccount].map(([id, grants]) => [
        id,
        grants.map((grant) => grant.id),
      ]),
      latestGrantBySub: [...this.#latestGrantBySub].map(([sub, grant]) => [sub, grant.id]),
    };
  }

  /** Replaces its records with exported ones; `authorization` finds the Individual half's authorization of an id. */
  importRecords(snapshot: EnterpriseRecords, authorization: (id: string) => Authorization): void {
    this.serviceAccountTokenTtlSeconds = snapshot.serviceAccountTokenTtlSeconds;
    this.#serviceAccounts = new Map(snapshot.serviceAccounts.map((account) => [account.id, account]));
    this.#codes = new Map(snapshot.codes);
    this.#accessTokens = new Map(snapshot.accessTokens);
    this.#serviceAccountIdByRefreshToken = new Map(snapshot.serviceAccountIdByRefreshToken);
    this.#grantsByServiceAccount = new Map(
      snapshot.grantsByServiceAccount.map(([id, grants]) => [id, grants.map(authorization)]),
    );
    this.#latestGrantBySub = new Map(snapshot.latestGrantBySub.map(([sub, id]) => [sub, authorization(id)]));
  }

  get deliveries(): DeliverySession {
    return this.#deliveries.session;
  }

  /** Drops every scheduled callback, e.g. on reset or when the simulator closes. */
  abortDeliveries(): void {
    this.#deliveries.controller.abort();
    this.#deliveries = newDeliverySession();
  }

  // Service accounts

  createServiceAccount(fields: NewServiceAccount): ServiceAccount {
    const serviceAccount: ServiceAccount = {
      ...fields,
      id: randomId('ser'),
      revoked: false,
      createdAt: this.state.now(),
    };
    this.#serviceAccounts.set(serviceAccount.id, serviceAccount);
    this.#grantsByServiceAccount.set(serviceAccount.id, []);
    return serviceAccount;
  }

  /** The one a downgrade is replacing: its domain prefills the administrator's consent page. */
  mostRecentlyRevokedServiceAccount(clientId: string): ServiceAccount | undefined {
    let latest: ServiceAccount | undefined;
    for (const serviceAccount of this.#serviceAccounts.values()) {
      if (serviceAccount.clientId !== clientId || !serviceAccount.revoked) continue;
      if (!latest || (serviceAccount.revokedAt ?? 0) >= (latest.revokedAt ?? 0)) latest = serviceAccount;
    }
    return latest;
  }

  // Codes and tokens, with the same rules as for accounts

  issueCode(serviceAccount: ServiceAccount, redirectUri: string): string {
    const { code, expiresAt } = this.state.newCode();
    this.#codes.set(code, {
      clientId: serviceAccount.clientId,
      redirectUri,
      serviceAccountId: serviceAccount.id,
      expiresAt,
      used: false,
    });
    return code;
  }

  /** Uses up a valid code; undefined for an unknown, used, expired or mismatched one, so the caller tries others. */
  redeemCode(code: string, clientId: string, redirectUri: string): ServiceAccount | undefined {
    const issued = this.#codes.get(code);
    if (!issued || issued.used || issued.expiresAt <= this.state.now()) return undefined;
    if (issued.clientId !== clientId || issued.redirectUri !== redirectUri) return undefined;
    const serviceAccount = this.#serviceAccounts.get(issued.serviceAccountId);
    if (!serviceAccount || serviceAccount.revoked) return undefined;
    issued.used = true;
    return serviceAccount;
  }

  issueTokens(serviceAccount: ServiceAccount): IssuedTokens {
    if (serviceAccount.refreshToken === undefined) {
      serviceAccount.refreshToken = this.state.newToken('refresh');
      this.#serviceAccountIdByRefreshToken.set(serviceAccount.refreshToken, serviceAccount.id);
    }
    const accessToken = this.state.newToken('access');
    const expiresIn = this.serviceAccountTokenTtlSeconds;
    this.#accessTokens.set(accessToken, {
      serviceAccountId: serviceAccount.id,
      expiresAt: this.state.now() + expiresIn * 1000,
    });
    return { accessToken, refreshToken: serviceAccount.refreshToken, expiresIn };
  }

  findRefreshableServiceAccount(clientId: string, refreshToken: string): ServiceAccount | undefined {
    const id = this.#serviceAccountIdByRefreshToken.get(refreshToken);
    const serviceAccount = id === undefined ? undefined : this.#serviceAccounts.get(id);
    return serviceAccount && !serviceAccount.revoked && serviceAccount.clientId === clientId
      ? serviceAccount
      : undefined;
  }

  /** The live service account behind an unexpired access token. */
  authorizeAccessToken(token: string): ServiceAccount | undefined {
    const accessToken = this.#accessTokens.get(token);
    if (!accessToken || accessToken.expiresAt <= this.state.now()) return undefined;
    const serviceAccount = this.#serviceAccounts.get(accessToken.serviceAccountId);
    return serviceAccount && !serviceAccount.revoked ? serviceAccount : undefined;
  }

  clientIdOfAccessToken(token: string): string | undefined {
    const accessToken = this.#accessTokens.get(token);
    return accessToken && this.#serviceAccounts.get(accessToken.serviceAccountId)?.clientId;
  }

  // Revocation

  /** A refresh token, or an access token while it is valid. Unknown tokens change nothing. */
  revokeByToken(clientId: string, token: string): void {
    const accessToken = this.#accessTokens.get(token);
    const id =
      this.#serviceAccountIdByRefreshToken.get(token) ??
      (accessToken && accessToken.expiresAt > this.state.now() ? accessToken.serviceAccountId : undefined);
    const serviceAccount = id === undefined ? undefined : this.#serviceAccounts.get(id);
    if (serviceAccount?.clientId === clientId) this.#revoke(serviceAccount);
  }

  revokeBySub(clientId: string, sub: string): void {
    const serviceAccount = this.#serviceAccounts.get(sub);
    if (serviceAccount?.clientId === clientId) this.#revoke(serviceAccount);
  }

  /** Revoking a service account revokes every user authorization granted through it. */
  #revoke(serviceAccount: ServiceAccount): void {
    if (!serviceAccount.revoked) {
      serviceAccount.revoked = true;
      serviceAccount.revokedAt = this.state.now();
    }
    for (const grant of this.#grantsByServiceAccount.get(serviceAccount.id) ?? []) {
      this.state.revokeAuthorization(grant);
    }
  }

  // User access granted through a service account

  /** Connects the user with the service account's provider; an existing account keeps its sub. */
  grantUserAccess(serviceAccount: ServiceAccount, email: string, scope: string): Authorization {
    const account = this.state.findOrCreateAccount(email);
    const authorization = this.state.createAuthorization(
      account,
      serviceAccount.clientId,
      scope,
      serviceAccount.providerName,
      serviceAccount.id,
    );
    this.#grantsByServiceAccount.get(serviceAccount.id)?.push(authorization);
    this.#latestGrantBySub.set(account.sub, authorization);
    return authorization;
  }

  // Inspection, for the control API. Never includes a secret.

  serviceAccountsView() {
    return [...this.#serviceAccounts.values()].map((serviceAccount) => {
      const grants = this.#grantsByServiceAccount.get(serviceAccount.id) ?? [];
      const revokedUsers = grants.filter((grant) => grant.revoked).length;
      return {
        id: serviceAccount.id,
        client_id: serviceAccount.clientId,
        domain: serviceAccount.domain,
        provider_name: serviceAccount.providerName,
        scope: serviceAccount.scope,
        delegated_scope: serviceAccount.delegatedScope,
        revoked: serviceAccount.revoked,
        created_at: iso(serviceAccount.createdAt),
        revoked_at: iso(serviceAccount.revokedAt),
        users: { total: grants.length, active: grants.length - revokedUsers, revoked: revokedUsers },
      };
    });
  }

  /** Every user ever connected through a service account, with their latest such authorization. */
  users(): UserSummary[] {
    return [...this.#latestGrantBySub.values()].map((grant) => ({
      email: this.state.accountOf(grant).email,
      sub: grant.sub,
      provider_name: grant.providerName,
      scope: grant.scope,
      revoked: grant.revoked,
      service_account_id: grant.serviceAccountId ?? null,
    }));
  }
}
