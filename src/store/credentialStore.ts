import { randomBytes } from 'node:crypto';
import type { Database } from './database.js';
import type { Keyring } from './encryption.js';
import { GroupCommit } from './groupCommit.js';
import { aad, rewrapAll } from './keyRotation.js';
import { claimStateNonces, type NonceClaim } from './stateNonces.js';

export interface NewCredentials {
  kind: 'account' | 'service_account';
  sub: string;
  accessToken: string;
  refreshToken?: string;
  expiresInSeconds?: number;
  scope?: string;
  providerName?: string;
  providerService?: string;
  profileId?: string;
  profileName?: string;
  /** What produced these credentials, e.g. the downgrade's workflow id. */
  label?: string;
  /** The grant (authorization code reference) these came from; unique, so one grant yields one row. */
  grantKey?: string;
}

export interface StoredCredentials extends NewCredentials {
  ref: string;
  accessTokenExpiresAt?: Date;
  createdAt: Date;
  revokedAt?: Date;
}

export type CredentialMetadata = Omit<StoredCredentials, 'accessToken' | 'refreshToken'>;

/** No credentials are stored under this reference: not retryable. */
export class CredentialNotFoundError extends Error {
  override name = 'CredentialNotFoundError';
  constructor(readonly ref: string) {
    super(`no credentials stored under ${ref}`);
  }
}

/** The secret was never stored, was deleted, or expired: not retryable. */
export class SecretNotFoundError extends Error {
  override name = 'SecretNotFoundError';
  constructor(readonly ref: string) {
    super(`secret ${ref} is missing or expired`);
  }
}

interface CredentialMetadataRow extends Record<string, unknown> {
  ref: string;
  kind: NewCredentials['kind'];
  sub: string;
  access_token_expires_at: Date | null;
  scope: string | null;
  provider_name: string | null;
  provider_service: string | null;
  profile_id: string | null;
  profile_name: string | null;
  label: string | null;
  created_at: Date;
  revoked_at: Date | null;
}

interface CredentialRow extends CredentialMetadataRow {
  access_token_enc: string;
  refresh_token_enc: string | null;
}

const METADATA_COLUMNS = `ref, kind, sub, access_token_expires_at, scope, provider_name, provider_service,
  profile_id, profile_name, label, created_at, revoked_at`;

function newRef(prefix: 'cred' | 'sec'): string {
  return `${prefix}_${randomBytes(18).toString('base64url')}`;
}

function assertPositiveSeconds(name: string, seconds: number): void {
  if (!Number.isFinite(seconds) || seconds <= 0) throw new RangeError(`${name} must be a positive number`);
}

/**
 * Tokens and short-lived secrets, encrypted at rest. Workflows carry only the references it hands out
 * (`cred_…`, `sec_…`); activities resolve them.
 */
export class CredentialStore {
  /** Callbacks' claims, many to a statement under load (see claimStateNonce). */
  readonly #claims = new GroupCommit((claims: NonceClaim[]) => claimStateNonces(this.db, claims), {
    maxBatch: 500,
  });

  constructor(
    private readonly db: Database,
    private readonly keyring: Keyring,
  ) {}

  async saveCredentials(c: NewCredentials): Promise<string> {
    if (c.expiresInSeconds !== undefined) assertPositiveSeconds('expiresInSeconds', c.expiresInSeconds);
    const ref = newRef('cred');
    await this.db.query(
      `INSERT INTO credentials (ref, kind, sub, access_token_enc, refresh_token_enc, access_token_expires_at,
         scope, provider_name, provider_service, profile_id, profile_name, label, grant_key)
       VALUES ($1, $2, $3, $4, $5, now() + $6::double precision * interval '1 second', $7, $8, $9, $10, $11, $12,
         $13)`,
      [
        ref,
        c.kind,
        c.sub,
        this.keyring.encrypt(c.accessToken, aad('credentials', 'access_token_enc', ref)),
        c.refreshToken === undefined
          ? null
          : this.keyring.encrypt(c.refreshToken, aad('credentials', 'refresh_token_enc', ref)),
        c.expiresInSeconds ?? null,
        c.scope ?? null,
        c.providerName ?? null,
        c.providerService ?? null,
        c.profileId ?? null,
        c.profileName ?? null,
        c.label ?? null,
        c.grantKey ?? null,
      ],
    );
    return ref;
  }

  /** The credentials a grant (an authorization code's reference) already produced, if any. */
  async findByGrantKey(grantKey: string): Promise<string | undefined> {
    const [row] = await this.db.query<{ ref: string }>('SELECT ref FROM credentials WHERE grant_key = $1', [
      grantKey,
    ]);
    return row?.ref;
  }

  async getCredentials(ref: string): Promise<StoredCredentials> {
    const [row] = await this.db.query<CredentialRow>(
      `SELECT ${METADATA_COLUMNS}, access_token_enc, refresh_token_enc FROM credentials WHERE ref = $1`,
      [ref],
    );
    if (!row) throw new CredentialNotFoundError(ref);
    const credentials: StoredCredentials = {
      ...toMetadata(row),
      accessToken: this.keyring.decrypt(row.access_token_enc, aad('credentials', 'access_token_enc', ref)),
    };
    if (row.refresh_token_enc !== null) {
      credentials.refreshToken = this.keyring.decrypt(
        row.refresh_token_enc,
        aad('credentials', 'refresh_token_enc', ref),
      );
    }
    return credentials;
  }

  async describeCredentials(ref: string): Promise<CredentialMetadata> {
    const [row] = await this.db.query<CredentialMetadataRow>(
      `SELECT ${METADATA_COLUMNS} FROM credentials WHERE ref = $1`,
      [ref],
    );
    if (!row) throw new CredentialNotFoundError(ref);
    return toMetadata(row);
  }

  /** After a token refresh; the refresh token is replaced only when Cronofy issued a new one. */
  async updateAccessToken(
    ref: string,
    accessToken: string,
    expiresInSeconds: number,
    refreshToken?: string,
  ): Promise<void> {
    assertPositiveSeconds('expiresInSeconds', expiresInSeconds);
    const updated = await this.db.query(
      `UPDATE credentials
       SET access_token_enc = $2,
           access_token_expires_at = now() + $3::double precision * interval '1 second',
           refresh_token_enc = COALESCE($4, refresh_token_enc),
           updated_at = now()
       WHERE ref = $1
       RETURNING ref`,
      [
        ref,
        this.keyring.encrypt(accessToken, aad('credentials', 'access_token_enc', ref)),
        expiresInSeconds,
        refreshToken === undefined
          ? null
          : this.keyring.encrypt(refreshToken, aad('credentials', 'refresh_token_enc', ref)),
      ],
    );
    if (updated.length === 0) throw new CredentialNotFoundError(ref);
  }

  /** Idempotent: the first revocation time is kept. */
  async markRevoked(ref: string): Promise<void> {
    const updated = await this.db.query(
      `UPDATE credentials SET revoked_at = COALESCE(revoked_at, now()), updated_at = now()
       WHERE ref = $1 RETURNING ref`,
      [ref],
    );
    if (updated.length === 0) throw new CredentialNotFoundError(ref);
  }

  /** Stores a short-lived secret, e.g. an authorization code waiting to be exchanged. */
  async putSecret(purpose: string, plaintext: string, ttlSeconds: number): Promise<string> {
    assertPositiveSeconds('ttlSeconds', ttlSeconds);
    const ref = newRef('sec');
    await this.db.query(
      `INSERT INTO secrets (ref, purpose, value_enc, expires_at)
       VALUES ($1, $2, $3, now() + $4::double precision * interval '1 second')`,
      [ref, purpose, this.keyring.encrypt(plaintext, aad('secrets', 'value_enc', ref)), ttlSeconds],
    );
    return ref;
  }

  /** Repeatable until the secret expires or is deleted, so a retried activity reads it again. */
  async readSecret(ref: string): Promise<string> {
    const [row] = await this.db.query<{ value_enc: string }>(
      'SELECT value_enc FROM secrets WHERE ref = $1 AND expires_at > now()',
      [ref],
    );
    if (!row) throw new SecretNotFoundError(ref);
    return this.keyring.decrypt(row.value_enc, aad('secrets', 'value_enc', ref));
  }

  /** Idempotent. */
  async deleteSecret(ref: string): Promise<void> {
    await this.db.query('DELETE FROM secrets WHERE ref = $1', [ref]);
  }

  /**
   * A callback's whole write: uses the state's nonce and, the first time only, stores the secret it carried (an
   * authorization code). Undefined on a replay, with nothing stored; otherwise the secret's ref, if one was given.
   * Concurrent claims of one nonce: exactly one gets an answer. Claims made while one is in flight share the next
   * statement (group commit), so a burst of callbacks costs a few round trips, not one each.
   */
  async claimStateNonce(
    nonce: string,
    expiresAt: Date,
    secret?: { purpose: string; plaintext: string; ttlSeconds: number },
  ): Promise<{ secretRef?: string } | undefined> {
    if (!secret) return this.#claims.submit({ nonce, expiresAt });
    assertPositiveSeconds('ttlSeconds', secret.ttlSeconds);
    const ref = newRef('sec');
    const valueEnc = this.keyring.encrypt(secret.plaintext, aad('secrets', 'value_enc', ref));
    return this.#claims.submit({ nonce, expiresAt, secret: { ...secret, ref, valueEnc } });
  }

  /** Undoes a consumption whose callback could not be delivered, so the user can retry it. */
  async releaseStateNonce(nonce: string): Promise<void> {
    await this.db.query('DELETE FROM state_nonces WHERE nonce = $1', [nonce]);
  }

  /**
   * Rewraps every ciphertext not under the active key; returns the number of rows rewritten.
   * Throws DecryptionError if a row names a key that is no longer configured.
   */
  reencryptAll(): Promise<number> {
    return rewrapAll(this.db, this.keyring);
  }
}

function toMetadata(row: CredentialMetadataRow): CredentialMetadata {
  const metadata: CredentialMetadata = {
    ref: row.ref,
    kind: row.kind,
    sub: row.sub,
    createdAt: row.created_at,
  };
  if (row.access_token_expires_at !== null) metadata.accessTokenExpiresAt = row.access_token_expires_at;
  if (row.scope !== null) metadata.scope = row.scope;
  if (row.provider_name !== null) metadata.providerName = row.provider_name;
  if (row.provider_service !== null) metadata.providerService = row.provider_service;
  if (row.profile_id !== null) metadata.profileId = row.profile_id;
  if (row.profile_name !== null) metadata.profileName = row.profile_name;
  if (row.label !== null) metadata.label = row.label;
  if (row.revoked_at !== null) metadata.revokedAt = row.revoked_at;
  return metadata;
}
