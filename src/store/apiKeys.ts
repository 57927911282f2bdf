import { createHash, timingSafeEqual } from 'node:crypto';
import { API_KEY_PATTERN, generateApiKey } from '../contracts/apiKeyFormat.js';
import type { Database } from './database.js';

/** What a key may do; a route names the one it needs. */
export const API_SCOPES = [
  'downgrades:write',
  'downgrades:read',
  'credentials:read',
  'operators:read',
  'operators:write',
  'operators:approve',
  'webhooks:admin',
  'keys:admin',
] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export function isApiScope(scope: string): scope is ApiScope {
  return (API_SCOPES as readonly string[]).includes(scope);
}

/** A key as the service knows it: never its secret. */
export interface ApiKey {
  id: string;
  name: string;
  scopes: ApiScope[];
  createdAt: string;
  revokedAt?: string;
}

// A key's secret is 256 random bits: one round of SHA-256 is all a stored hash needs (there is nothing to guess).
const hashOf = (secret: string) => createHash('sha256').update(secret).digest('hex');

type KeyRow = {
  id: string;
  name: string;
  scopes: string;
  secret_hash: string;
  created_at: Date;
  revoked_at: Date | null;
};

function describe(row: KeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes.split(' ').filter(isApiScope),
    createdAt: row.created_at.toISOString(),
    revokedAt: row.revoked_at?.toISOString(),
  };
}

/** The API's keys, stored as a hash of their secret with their name and scopes. */
export class ApiKeys {
  constructor(private readonly database: Database) {}

  /** A new key with these scopes; the answer holds the key's text, which is stored nowhere. */
  async create(name: string, scopes: readonly ApiScope[]): Promise<ApiKey & { key: string }> {
    const key = generateApiKey();
    return { ...(await this.register(key, name, scopes)), key };
  }

  /**
   * Stores a key made elsewhere (the local admin key `npm start` keeps in .data/). Registering the same key again
   * gives it the scopes named now (an upgrade's new scopes reach the admin key); a revoked key stays revoked.
   */
  async register(key: string, name: string, scopes: readonly ApiScope[]): Promise<ApiKey> {
    const parts = API_KEY_PATTERN.exec(key);
    if (!parts) throw new Error('not an API key of this service');
    const [, id, secret] = parts;
    await this.database.query(
      `INSERT INTO api_keys (id, name, scopes, secret_hash) VALUES ($1, $2, $3, $4)
       ON CONFLICT (id) DO UPDATE SET scopes = EXCLUDED.scopes WHERE api_keys.secret_hash = EXCLUDED.secret_hash`,
      [id, name, scopes.join(' '), hashOf(secret!)],
    );
    const [row] = await this.database.query<KeyRow>(`SELECT * FROM api_keys WHERE id = $1`, [id]);
    return describe(row!);
  }

  /** The key a request presented, if it is one of ours and not revoked; nothing says which check failed. */
  async authenticate(key: string): Promise<ApiKey | undefined> {
    const parts = API_KEY_PATTERN.exec(key);
    if (!parts) return undefined;
    const [, id, secret] = parts;
    const [row] = await this.database.query<KeyRow>(
      `SELECT * FROM api_keys WHERE id = $1 AND revoked_at IS NULL`,
      [id],
      { prepareAs: 'api_key_by_id' },
    );
    if (!row) return undefined;
    const matches = timingSafeEqual(Buffer.from(row.secret_hash, 'hex'), Buffer.from(hashOf(secret!), 'hex'));
    return matches ? describe(row) : undefined;
  }

  async list(): Promise<ApiKey[]> {
    const rows = await this.database.query<KeyRow>(`SELECT * FROM api_keys ORDER BY created_at, id`);
    return rows.map(describe);
  }

  /**
   * Takes one request from the key's budget: a bucket of `perMinute` requests, refilled at `perMinute` a minute,
   * kept in the database so that every API process spends the same one. When the bucket is empty, how many
   * seconds until it holds a request again.
   */
  async takeRequest(
    id: string,
    perMinute: number,
  ): Promise<{ allowed: true } | { allowed: false; retryAfterSeconds: number }> {
    const perSecond = perMinute / 60;
    const [row] = await this.database.query<{ tokens: number }>(
      `INSERT INTO api_rate_buckets (key_id, tokens, updated_at) VALUES ($1, $2::double precision - 1, clock_timestamp())
       ON CONFLICT (key_id) DO UPDATE SET
         tokens = greatest(-1, least($2::double precision,
           api_rate_buckets.tokens + extract(epoch FROM clock_timestamp() - api_rate_buckets.updated_at) * $3::double precision) - 1),
         updated_at = clock_timestamp()
       RETURNING tokens`,
      [id, perMinute, perSecond],
      { prepareAs: 'api_take_request' },
    );
    const tokens = Number(row!.tokens);
    // Below zero, the request found less than one in the bucket: it waits until the bucket refills to one.
    return tokens >= 0
      ? { allowed: true }
      : { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(-tokens / perSecond)) };
  }

  /** Revokes a key at once; false when there is no such key. */
  async revoke(id: string): Promise<boolean> {
    const rows = await this.database.query(
      `UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING id`,
      [id],
    );
    return rows.length > 0;
  }
}
