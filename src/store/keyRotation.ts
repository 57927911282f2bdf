import type { Database } from './database.js';
import type { Keyring } from './encryption.js';

/** Encrypted columns per table; each ciphertext is bound to its table, column and row. */
const ENCRYPTED_COLUMNS = {
  credentials: ['access_token_enc', 'refresh_token_enc'],
  secrets: ['value_enc'],
} as const;
type EncryptedTable = keyof typeof ENCRYPTED_COLUMNS;

const REWRAP_BATCH_SIZE = 500;

/** What a ciphertext is bound to: its table, column and row; decrypting it anywhere else fails. */
export function aad(table: EncryptedTable, column: string, ref: string): string {
  return `${table}.${column}:${ref}`;
}

/** Rewraps every ciphertext of every encrypted table that is not under the keyring's active key. */
export async function rewrapAll(db: Database, keyring: Keyring): Promise<number> {
  let rewritten = 0;
  for (const table of Object.keys(ENCRYPTED_COLUMNS) as EncryptedTable[]) {
    rewritten += await rewrapTable(db, keyring, table);
  }
  return rewritten;
}

async function rewrapTable(db: Database, keyring: Keyring, table: EncryptedTable): Promise<number> {
  const columns = ENCRYPTED_COLUMNS[table];
  const activeKeyId = keyring.activeKeyId;
  const underOtherKey = columns.map((column) => `split_part(${column}, '.', 2) <> $2`).join(' OR ');
  let rewritten = 0;
  let lastRef = '';
  for (;;) {
    const rows = await db.query<Record<string, string | null>>(
      `SELECT ref, ${columns.join(', ')} FROM ${table}
       WHERE ref > $1 AND (${underOtherKey})
       ORDER BY ref LIMIT ${REWRAP_BATCH_SIZE}`,
      [lastRef, activeKeyId],
    );
    for (const row of rows) {
      const ref = row.ref as string;
      const rewrapped = columns.map((column) => {
        const envelope = row[column];
        if (envelope === null || envelope === undefined) return null;
        const place = aad(table, column, ref);
        return keyring.encrypt(keyring.decrypt(envelope, place), place);
      });
      // Compare-and-set: a concurrent token update wins and is not overwritten with an older token.
      const assignments = columns.map((column, i) => `${column} = $${i + 2}`).join(', ');
      const unchanged = columns
        .map((column, i) => `${column} IS NOT DISTINCT FROM $${columns.length + i + 2}`)
        .join(' AND ');
      const updated = await db.query(
        `UPDATE ${table} SET ${assignments} WHERE ref = $1 AND ${unchanged} RETURNING ref`,
        [ref, ...rewrapped, ...columns.map((column) => row[column])],
      );
      rewritten += updated.length;
      lastRef = ref;
    }
    if (rows.length < REWRAP_BATCH_SIZE) return rewritten;
  }
}
