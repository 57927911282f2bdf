import { isPostgresUrl, type Config } from './config.js';
import { openDatabase, type Database } from './store/database.js';

/**
 * A CLI command's action on the service's database, opened for the command and closed after it. Only the
 * PostgreSQL DATABASE_URL the service uses: the embedded file database belongs to the running service.
 */
export function onServiceDatabase<O>(
  io: { config(): Config; usageError(message: string): Error },
  run: (database: Database, config: Config, options: O) => Promise<void>,
): (options: O) => Promise<void> {
  return async (options: O) => {
    const config = io.config();
    if (!isPostgresUrl(config.DATABASE_URL)) {
      throw io.usageError(
        'this command opens the service database: set DATABASE_URL to the PostgreSQL the service uses ' +
          '(the embedded file database belongs to the running service)',
      );
    }
    const database = await openDatabase(config.DATABASE_URL);
    try {
      await run(database, config, options);
    } finally {
      await database.close();
    }
  };
}
