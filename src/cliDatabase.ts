import { DowngradeUsageError } from './client/errors.js';
import { isPostgresUrl } from './config.js';
import { openDatabase, type Database } from './store/database.js';

/**
 * Runs `work` on the service's database, opened for it and closed after it: `api-keys create --database`, the
 * bootstrap of a deployment's first key, is the one command that needs it. Only the PostgreSQL DATABASE_URL the
 * service uses: the embedded file database belongs to the running service (whose API makes keys instead).
 */
export async function onServiceDatabase<T>(
  databaseUrl: string | undefined,
  work: (database: Database) => Promise<T>,
): Promise<T> {
  if (!databaseUrl || !isPostgresUrl(databaseUrl)) {
    throw new DowngradeUsageError(
      '--database opens the service database: set DATABASE_URL to the PostgreSQL the service uses ' +
        '(the embedded file database belongs to the running service: make keys through its API instead)',
    );
  }
  const database = await openDatabase(databaseUrl);
  try {
    return await work(database);
  } finally {
    await database.close();
  }
}
