/**
 * `cronofy-downgrade api-keys …`: the HTTP API's keys, through the API with a key that has `keys:admin`. A
 * deployment's first admin key has no key to ask with: `api-keys create --database` makes it on the service's
 * PostgreSQL (DATABASE_URL), where that is reachable. A key's text is shown once, when it is created.
 */
import { Option, type Command } from 'commander';
import { ApiError, segment, type ApiClient } from './cliApi.js';
import { DowngradeUsageError } from './client/errors.js';
import { API_SCOPES, ApiKeys, isApiScope, type ApiKey, type ApiScope } from './store/apiKeys.js';

export interface ApiKeysIo {
  /** The service's API, opened for the command that needs it. */
  api(): ApiClient;
  /** The environment, for DATABASE_URL. */
  env: Record<string, string | undefined>;
  json(): boolean;
  out(text: string): void;
}

/** Adds the `api-keys` commands to `program`, whose output and exit settings they inherit. */
export function addApiKeysCommands(program: Command, io: ApiKeysIo): void {
  const print = (value: unknown, text: string) =>
    io.out(`${io.json() ? JSON.stringify(value, null, 2) : text}\n`);
  const scopesOf = (list: string): ApiScope[] => {
    const scopes = list === 'all' ? [...API_SCOPES] : list.split(',').map((scope) => scope.trim());
    const unknown = scopes.filter((scope) => !isApiScope(scope));
    if (unknown.length > 0 || scopes.length === 0) {
      throw new DowngradeUsageError(
        `--scopes: ${unknown.join(', ') || 'none'}; scopes are ${API_SCOPES.join(', ')} or all`,
      );
    }
    return scopes as ApiScope[];
  };

  const keys = program
    .command('api-keys')
    .description("the HTTP API's keys: create (shown once), list, revoke");
  keys
    .command('create')
    .description('a new key with these scopes; its text is printed once and stored nowhere')
    .requiredOption('--name <name>', 'who or what uses it, e.g. the billing backend')
    .requiredOption('--scopes <scopes>', `comma-separated: ${API_SCOPES.join(', ')}; or all`)
    .addOption(
      new Option(
        '--database',
        "a deployment's first key: made on the service's PostgreSQL (DATABASE_URL), not through the API",
      ),
    )
    .action(async (options: { name: string; scopes: string; database?: boolean }) => {
      const scopes = scopesOf(options.scopes);
      const created = options.database
        ? await createOnDatabase(io.env, options.name, scopes)
        : await io.api().post<ApiKey & { key: string }>('v1/api-keys', { name: options.name, scopes });
      print(created, `${describeKey(created)}\n${created.key}\n(shown once: keep it now)`);
    });
  keys
    .command('list')
    .description('every key: its id, name, scopes, and whether it is revoked')
    .action(async () => {
      const { body } = await io.api().get<{ keys: ApiKey[] }>('v1/api-keys');
      print(body.keys, body.keys.length === 0 ? 'no keys' : body.keys.map(describeKey).join('\n'));
    });
  keys
    .command('revoke')
    .description('revoke a key at once')
    .argument('<id>', 'the key id (between `cdk_` and the next `_`)')
    .action(async (id: string) => {
      try {
        await io.api().post(`v1/api-keys/${segment(id)}/revoke`);
      } catch (error) {
        // A malformed id names no key either.
        const unknown =
          (error instanceof ApiError && error.code === 'not_found') || error instanceof DowngradeUsageError;
        if (unknown) throw new DowngradeUsageError(`no API key ${id}`);
        throw error;
      }
      print({ revoked: id }, `revoked ${id}`);
    });
}

/** The bootstrap: a key made on the service's database itself (its driver loaded for this command only). */
async function createOnDatabase(
  env: Record<string, string | undefined>,
  name: string,
  scopes: ApiScope[],
): Promise<ApiKey & { key: string }> {
  const { onServiceDatabase } = await import('./cliDatabase.js');
  return onServiceDatabase(env.DATABASE_URL, (database) => new ApiKeys(database).create(name, scopes));
}

function describeKey(key: ApiKey): string {
  const revoked = key.revokedAt ? `, revoked ${key.revokedAt}` : '';
  return `${key.id}  ${key.name}  [${key.scopes.join(' ')}]  created ${key.createdAt}${revoked}`;
}
