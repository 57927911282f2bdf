/**
 * `cronofy-downgrade api-keys …`: the HTTP API's keys, made where the service's database is reachable. The first
 * admin key of a deployment comes from here; a key's text is shown once, when it is created.
 */
import type { Command } from 'commander';
import { onServiceDatabase } from './cliDatabase.js';
import type { Config } from './config.js';
import { API_SCOPES, ApiKeys, isApiScope, type ApiKey, type ApiScope } from './store/apiKeys.js';

export interface ApiKeysIo {
  config(): Config;
  json(): boolean;
  out(text: string): void;
  usageError(message: string): Error;
}

/** Adds the `api-keys` commands to `program`, whose output and exit settings they inherit. */
export function addApiKeysCommands(program: Command, io: ApiKeysIo): void {
  const withKeys = <O>(run: (keys: ApiKeys, options: O) => Promise<void>) =>
    onServiceDatabase<O>(io, (database, _config, options) => run(new ApiKeys(database), options));
  const print = (value: unknown, text: string) =>
    io.out(`${io.json() ? JSON.stringify(value, null, 2) : text}\n`);
  const scopesOf = (list: string): ApiScope[] => {
    const scopes = list === 'all' ? [...API_SCOPES] : list.split(',').map((scope) => scope.trim());
    const unknown = scopes.filter((scope) => !isApiScope(scope));
    if (unknown.length > 0 || scopes.length === 0) {
      throw io.usageError(
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
    .action(
      withKeys(async (apiKeys, options: { name: string; scopes: string }) => {
        const created = await apiKeys.create(options.name, scopesOf(options.scopes));
        print(created, `${describeKey(created)}\n${created.key}\n(shown once: keep it now)`);
      }),
    );
  keys
    .command('list')
    .description('every key: its id, name, scopes, and whether it is revoked')
    .action(
      withKeys(async (apiKeys) => {
        const all = await apiKeys.list();
        print(all, all.length === 0 ? 'no keys' : all.map(describeKey).join('\n'));
      }),
    );
  keys
    .command('revoke')
    .description('revoke a key at once')
    .argument('<id>', 'the key id (between `cdk_` and the next `_`)')
    // Commander hands an action its argument first: the id stands where a command's options would.
    .action(
      withKeys(async (apiKeys, id: string) => {
        if (!(await apiKeys.revoke(id))) throw io.usageError(`no API key ${id}`);
        print({ revoked: id }, `revoked ${id}`);
      }),
    );
}

function describeKey(key: ApiKey): string {
  const revoked = key.revokedAt ? `, revoked ${key.revokedAt}` : '';
  return `${key.id}  ${key.name}  [${key.scopes.join(' ')}]  created ${key.createdAt}${revoked}`;
}
