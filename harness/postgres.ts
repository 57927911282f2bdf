import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** A real PostgreSQL for tests: TEST_POSTGRES_URL, or a throwaway server started by the project's script. */
export function testPostgresUrl(): string {
  return (
    process.env.TEST_POSTGRES_URL ??
    execFileSync('bash', ['scripts/start-test-postgres.sh'], { encoding: 'utf8' }).trim()
  );
}

/** A fresh database on that server, dropped afterwards. */
export async function createScratchDatabase(
  serverUrl: string,
  prefix = 'test',
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const dropper = new pg.Client({ connectionString: serverUrl });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await dropper.end();
    },
  };
}
