/** The simulated Cronofy's records, shared by its Individual (state.ts) and Enterprise (enterpriseState.ts) halves. */

export interface SimulatorClient {
  clientId: string;
  clientSecret: string;
  /** Exact-match allowlist, as Cronofy requires redirect URIs to be registered. */
  redirectUris: string[];
}

/** `google` / `ms_graph`: Read-Write; `*_free_busy`: Free/Busy; `cronofy`: No Access. */
export type ProviderName = 'google' | 'ms_graph' | 'google_free_busy' | 'ms_graph_free_busy' | 'cronofy';

export interface Account {
  sub: string;
  email: string;
  profileId: string;
  createdAt: number;
}

export interface Authorization {
  id: string;
  sub: string;
  clientId: string;
  scope: string;
  providerName: ProviderName;
  providerService: ProviderName;
  /** Issued with the first access token; stays the same across refreshes. */
  refreshToken?: string;
  /** Set when an Enterprise Connect service account granted this authorization. */
  serviceAccountId?: string;
  revoked: boolean;
  /**
   * The account's calendar profile was revoked on its own (`POST /v1/profiles/{profile_id}/revoke`): the
   * authorization and its tokens live on, but the profile no longer appears in its userinfo.
   */
  profileRevoked?: boolean;
  createdAt: number;
  revokedAt?: number;
}

export interface IssuedTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
}

export interface IssuedCode {
  code: string;
  issuedAt: number;
  expiresAt: number;
}

/** What the Enterprise half asks of the Individual half: accounts, authorizations, codes, tokens and the clock. */
export interface IndividualRecords {
  now(): number;
  findOrCreateAccount(email: string): Account;
  accountOf(authorization: Authorization): Account;
  createAuthorization(
    account: Account,
    clientId: string,
    scope: string,
    providerName: ProviderName,
    serviceAccountId?: string,
  ): Authorization;
  revokeAuthorization(authorization: Authorization): void;
  newCode(): IssuedCode;
  newToken(kind: 'access' | 'refresh'): string;
}
