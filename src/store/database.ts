import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { isPostgresUrl } from '../config.js';
import { migrations } from './migrations.js';

export interface Database {
  /**
   * With `prepareAs`, PostgreSQL parses and plans the statement once per connection and reuses it under that
   * name: for the statements of the hot path (one per callback).
   */
  query<Row extends Record<string, unknown> = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
    options?: { prepareAs?: string },
  ): Promise<Row[]>;
  close(): Promise<void>;
}

/** One connection inside an open transaction; `exec` runs several statements (no parameters). */
interface Transaction {
  query<Row extends Record<string, unknown>>(sql: string, params?: unknown[]): Promise<Row[]>;
  exec(sql: string): Promise<void>;
}

interface Backend extends Database {
  transaction<T>(work: (tx: Transaction) => Promise<T>): Promise<T>;
}

// Any constant shared by every process that migrates this schema; "cronofy1" in ASCII.
const MIGRATION_LOCK_ID = 0x63726f6e6f667931n;

/**
 * Opens the credential database and brings its schema up to date.
 * `postgres://…` or `postgresql://…` uses PostgreSQL; `memory:` an in-memory PGlite;
 * anything else (`file:.data/store`, `file:///abs/path` or a plain path) a PGlite data directory.
 */
export async function openDatabase(url: string): Promise<Database> {
  const backend = isPostgresUrl(url) ? openPostgres(url) : await openPGlite(url);
  try {
    await migrate(backend);
  } catch (error) {
    await backend.close();
    throw error;
  }
  return {
    query: (sql, params, options) => backend.query(sql, params, options),
    close: () => backend.close(),
  };
}

function openPostgres(url: string): Backend {
  // A statement that hangs fails after 10 s instead of holding its callers (and the callbacks batched behind them).
  const pool = new pg.Pool({ connectionString: url, statement_timeout: 10_000, query_timeout: 15_000 });
  // An idle client losing its connection must not crash the process; the pool replaces it on the next query.
  pool.on('error', () => {});
  return {
    async query<Row extends Record<string, unknown>>(
      sql: string,
      params?: unknown[],
      options?: { prepareAs?: string },
    ) {
      return (await pool.query<Row>({ text: sql, values: params, name: options?.prepareAs })).rows;
    },
    async transaction(work) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await work({
          query: async <Row extends Record<string, unknown>>(sql: string, params?: unknown[]) =>
            (await client.query<Row>(sql, params)).rows,
          exec: async (sql) => {
            await client.query(sql);
          },
        });
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

async function openPGlite(url: string): Promise<Backend> {
  let pglite: PGlite;
  if (url === 'memory:') {
    pglite = await PGlite.create();
  } else {
    const dataDir = url.startsWith('file://')
      ? fileURLToPath(url)
      : resolve(url.startsWith('file:') ? url.slice('file:'.length) : url);
    await mkdir(dirname(dataDir), { recursive: true });
    pglite = await PGlite.create(dataDir);
  }
  return {
    async query<Row extends Record<string, unknown>>(sql: string, params?: unknown[]) {
      return (await pglite.query<Row>(sql, params)).rows;
    },
    transaction: (work) =>
      pglite.transaction((tx) =>
        work({
          query: async <Row extends Record<string, unknown>>(sql: string, params?: unknown[]) =>
            (await tx.query<Row>(sql, params)).rows,
          exec: async (sql) => {
            await tx.exec(sql);
          },
        }),
      ),
    close: () => pglite.close(),
  };
}

async function migrate(backend: Backend): Promise<void> {
  await backend.transaction(async (tx) => {
    // Serialises processes that open the same database at once; released at commit or rollback.
    await tx.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_ID.toString()]);
    await tx.exec(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )
    `);
    const applied = await tx.query<{ version: number }>('SELECT version FROM schema_migrations');
    const appliedVersions = new Set(applied.map((row) => row.version));
    for (const migration of migrations) {
      if (appliedVersions.has(migration.version)) continue;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
    }
  });
}
