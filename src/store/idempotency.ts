import type { Database } from './database.js';
import type { Keyring } from './encryption.js';

/** What a POST with an `Idempotency-Key` may do, as the record of that key says. */
export type IdempotentTurn =
  | { kind: 'first' }
  | { kind: 'replay'; status: number; response: string }
  | { kind: 'other_request' }
  | { kind: 'in_progress' };

type Row = { request_hash: string; status: number | null; response: string | null };

/**
 * The API's idempotent requests: per API key and `Idempotency-Key`, a hash of the request (never its body: a start
 * carries a refresh token) and, once answered, the answer, encrypted (a new API key's answer holds the key). The row is claimed by an insert, so of any number of
 * concurrent duplicates, in any number of API processes, one goes first.
 */
export class IdempotentRequests {
  constructor(
    private readonly database: Database,
    private readonly keyring: Keyring,
  ) {}

  /** Claims the key for this request, or says what became of the request that claimed it. */
  async claim(keyId: string, idempotencyKey: string, requestHash: string): Promise<IdempotentTurn> {
    const claimed = await this.database.query(
      `INSERT INTO api_idempotency (key_id, idempotency_key, request_hash) VALUES ($1, $2, $3)
       ON CONFLICT (key_id, idempotency_key) DO NOTHING RETURNING key_id`,
      [keyId, idempotencyKey, requestHash],
    );
    if (claimed.length > 0) return { kind: 'first' };
    const [row] = await this.database.query<Row>(
      `SELECT request_hash, status, response FROM api_idempotency WHERE key_id = $1 AND idempotency_key = $2`,
      [keyId, idempotencyKey],
    );
    // Released between the insert and the read: the caller may claim it again.
    if (!row) return { kind: 'in_progress' };
    if (row.request_hash !== requestHash) return { kind: 'other_request' };
    if (row.status === null || row.response === null) return { kind: 'in_progress' };
    return {
      kind: 'replay',
      status: row.status,
      response: this.keyring.decrypt(row.response, aad(keyId, idempotencyKey)),
    };
  }

  /** Keeps the answer, which every later request with the key gets again. */
  async complete(keyId: string, idempotencyKey: string, status: number, response: string): Promise<void> {
    await this.database.query(
      `UPDATE api_idempotency SET status = $3, response = $4, completed_at = now()
       WHERE key_id = $1 AND idempotency_key = $2`,
      [keyId, idempotencyKey, status, this.keyring.encrypt(response, aad(keyId, idempotencyKey))],
    );
  }

  /** Lets the key go without an answer (the request failed on the service's side): a retry runs afresh. */
  async release(keyId: string, idempotencyKey: string): Promise<void> {
    await this.database.query(
      `DELETE FROM api_idempotency WHERE key_id = $1 AND idempotency_key = $2 AND status IS NULL`,
      [keyId, idempotencyKey],
    );
  }
}

function aad(keyId: string, idempotencyKey: string): string {
  return `api_idempotency:${keyId}:${idempotencyKey}`;
}
