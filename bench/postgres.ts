/**
 * The benchmarks' PostgreSQL: the project's throwaway server (scripts/start-test-postgres.sh) on its own port and
 * data folder, because the tests' default port 55432 is shared with every other checkout on the machine, whose
 * `start-test-postgres.sh stop` would end a long run half-way. Each run works in a scratch database of its own.
 */
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

/** Starts the server unless it runs (BENCH_POSTGRES_PORT, default 55439; BENCH_POSTGRES_DIR); its admin URL. */
export function startBenchPostgres(): { url: string; dataDir: string } {
  const dataDir = process.env.BENCH_POSTGRES_DIR ?? join(tmpdir(), 'cronofy-downgrade-bench-postgres');
  const script = fileURLToPath(new URL('../scripts/start-test-postgres.sh', import.meta.url));
  const url = execFileSync('bash', [script], {
    encoding: 'utf8',
    env: {
      ...process.env,
      TEST_POSTGRES_PORT: process.env.BENCH_POSTGRES_PORT ?? '55439',
      TEST_POSTGRES_DIR: dataDir,
    },
  }).trim();
  return { url, dataDir };
}

async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A new database named `<prefix>_<time>_<pid>`; its URL. */
export async function createScratchDatabase(adminUrl: string, prefix: string): Promise<string> {
  const name = `${prefix}_${Date.now()}_${process.pid}`;
  await withAdmin(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database createScratchDatabase made with `prefix`, and refuses any other. */
export async function dropScratchDatabase(
  adminUrl: string,
  databaseUrl: string,
  prefix: string,
): Promise<void> {
  const name = new URL(databaseUrl).pathname.slice(1);
  if (!new RegExp(`^${prefix}_\\d+_\\d+$`).test(name)) throw new Error(`refusing to drop ${name}`);
  await withAdmin(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}
