/**
 * `cronofy-downgrade`: operators' commands for Enterprise Connect downgrades (`--domain`) and campaigns of
 * Individual downgrades (`--campaign`), through the service's HTTP API (src/api/): CRONOFY_DOWNGRADE_API_URL, by
 * default the API `npm start` serves on this machine, with the key CRONOFY_DOWNGRADE_API_KEY, by default the admin
 * key `npm start` keeps in .data/local-secrets.json (src/cliApi.ts). No command needs Temporal or the service's
 * database, but `api-keys create --database`, which makes a deployment's first key on its PostgreSQL.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import type { z } from 'zod';
import type { Report, RunPreview, StartedRun } from './api/operatedRunSchemas.js';
import { MAX_PAGE } from './api/operatedRunSchemas.js';
import { ApiClient, apiTarget, segment } from './cliApi.js';
import { addApiKeysCommands } from './cliApiKeys.js';
import { describe, previewText, watchRun, type RunStatus } from './cliOutput.js';
import { addWebhooksCommands } from './cliWebhooks.js';
import { DowngradeUsageError } from './client/errors.js';

/** A refresh token never goes on a command line, where `ps` and shell history would show it. */
const TOKEN_VARIABLE = 'SERVICE_ACCOUNT_REFRESH_TOKEN';
/** How often `cancel` reads the run until it has ended. */
const CANCEL_POLL_MS = 500;

type Preview = z.infer<typeof RunPreview>;
type Started = z.infer<typeof StartedRun>;

/** One entry per line (a CSV's columns); blank lines and `#` comments are skipped. */
async function readLines(path: string): Promise<string[][]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new DowngradeUsageError(
      `cannot read the user file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(',').map((cell) => cell.trim()));
}

function serviceAccount(options: { serviceAccountSub?: string }, env: Io['env']) {
  const serviceAccountRefreshToken = env[TOKEN_VARIABLE] || undefined;
  if (!serviceAccountRefreshToken && !options.serviceAccountSub) {
    throw new DowngradeUsageError(
      `name the service account: --service-account-sub ser_… or ${TOKEN_VARIABLE} in the environment`,
    );
  }
  return { serviceAccountRefreshToken, serviceAccountSub: options.serviceAccountSub };
}

/** The cursor of the next page a report's `Link: <…>; rel="next"` header names, if there is one. */
function nextCursor(link: string | string[] | undefined): string | undefined {
  const next = /<([^>]*)>\s*;\s*rel="?next"?/.exec([link ?? []].flat().join(', '))?.[1];
  return next ? (new URL(next, 'http://api').searchParams.get('cursor') ?? undefined) : undefined;
}

/** What one run of the CLI reads and writes: the process's environment, directory and streams, or a caller's. */
export interface Io {
  /**
   * The environment: where the API is and its key (src/cliApi.ts), the service account's refresh token, and
   * DATABASE_URL for `api-keys create --database`.
   */
  env: Record<string, string | undefined>;
  /** Where `npm start`'s .data/local-secrets.json is looked for; the process's working directory by default. */
  cwd?: string;
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  env: process.env,
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

type TargetOptions = { domain?: string; campaign?: string };

/** The domain or the campaign a command names (the preAction hook made sure it names exactly one). */
function targetOf(options: TargetOptions) {
  return options.domain
    ? {
        kind: 'domains' as const,
        path: `v1/domains/${segment(options.domain)}`,
        label: options.domain,
      }
    : {
        kind: 'campaigns' as const,
        path: `v1/campaigns/${segment(options.campaign!)}`,
        label: `campaign ${options.campaign}`,
      };
}

function buildProgram(io: Io): Command {
  const program = new Command('cronofy-downgrade')
    .description('Operate Enterprise Connect downgrades and campaigns of Individual downgrades')
    .option('--json', 'print JSON for scripts')
    .showHelpAfterError()
    // Inherited by the commands below: main() decides the exit code, io receives commander's messages.
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });
  const json = () => Boolean(program.opts<{ json?: boolean }>().json);
  const print = (value: unknown, text: string) =>
    io.out(`${json() ? JSON.stringify(value, null, 2) : text}\n`);
  /** The service's API, for one command: its requests share the invocation's idempotency keys. */
  const api = () => new ApiClient(apiTarget(io.env, io.cwd ?? process.cwd()));
  /** A command on a domain or a campaign. */
  const onTarget = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .option('-d, --domain <domain>', 'an Enterprise Connect domain')
      .option('-c, --campaign <name>', 'a campaign of Individual downgrades')
      .hook('preAction', (command) => {
        const { domain, campaign } = command.opts<TargetOptions>();
        if (Boolean(domain) === Boolean(campaign))
          throw new DowngradeUsageError('name one --domain or one --campaign');
      });
  const by = new Option('--by <operator>', 'who decides (recorded on the run)').makeOptionMandatory();

  onTarget('preview', 'capture the users (and read the service account); change nothing')
    .requiredOption(
      '--users <file>',
      'a domain: one email per line; a campaign: one acc_… sub[,user id[,email]] per line',
    )
    .option(
      '--service-account-sub <sub>',
      `a domain's service account (or ${TOKEN_VARIABLE} in the environment)`,
    )
    .action(async (options: TargetOptions & { users: string; serviceAccountSub?: string }) => {
      const target = targetOf(options);
      const lines = await readLines(options.users);
      const account = options.domain ? serviceAccount(options, io.env) : {};
      const people = options.campaign
        ? lines.map(([sub, userId, email]) => ({
            sub: sub!,
            userId: userId || undefined,
            email: email || undefined,
          }))
        : lines.map(([email]) => email!);
      const client = api();
      // Any number of users, in pages the API takes; the preview reads the upload once.
      const { uploadId } = await client.post<{ uploadId: string }>('v1/uploads', { kind: target.kind });
      for (let from = 0; from < people.length; from += MAX_PAGE) {
        const page = people.slice(from, from + MAX_PAGE);
        await client
          .post(`v1/uploads/${segment(uploadId)}/pages`, {
            [options.campaign ? 'people' : 'emails']: page,
          })
          .catch((error: unknown) => {
            if (error instanceof DowngradeUsageError) {
              throw new DowngradeUsageError(
                `${options.users}, entries ${from + 1} to ${from + page.length}: ${error.message}`,
              );
            }
            throw error;
          });
      }
      const preview = await client.post<Preview>(`${target.path}/previews`, { uploadId, ...account });
      const extra = options.domain
        ? [
            `service account: ${
              preview.serviceAccount?.providerName
                ? `${preview.serviceAccount.providerName} (${preview.serviceAccount.scope}, delegated ${preview.serviceAccount.delegatedScope})`
                : 'not read'
            }`,
          ]
        : [];
      print(preview, previewText(preview.previewId, target.label, preview, extra));
    });

  onTarget('start', 'start from a preview; the run waits for approval')
    .requiredOption('--preview <id>', 'the preview to start from')
    .option('--admin-email <address>', "a domain's administrator, who then receives their link by email")
    .action(async (options: TargetOptions & { preview: string; adminEmail?: string }) => {
      const target = targetOf(options);
      const started = await api().post<Started>(`${target.path}/start`, {
        previewId: options.preview,
        ...(options.domain ? { adminEmail: options.adminEmail } : {}),
      });
      print(started, `started ${target.label} (${started.workflowId}); approve preview ${options.preview}`);
    });

  onTarget('approve', 'let a run waiting for approval go ahead')
    .requiredOption('--preview <id>', 'the preview the run was started from')
    .addOption(by)
    .action(async (options: TargetOptions & { preview: string; by: string }) => {
      const target = targetOf(options);
      const status = await api().post<RunStatus>(`${target.path}/approve`, {
        previewId: options.preview,
        by: options.by,
      });
      print(status, describe(target.label, status));
    });

  for (const [name, description] of [
    ['reject', 'end a run waiting for approval, with no Cronofy call'],
    ['pause', 'stop starting users and asking Cronofy; waiting users keep waiting'],
    ['resume', 'carry on after a pause or a tripped circuit breaker'],
  ] as const) {
    onTarget(name, description)
      .addOption(by)
      .option('--reason <text>', 'why (recorded on the run)')
      .action(async (options: TargetOptions & { by: string; reason?: string }) => {
        const target = targetOf(options);
        const status = await api().post<RunStatus>(`${target.path}/${name}`, {
          by: options.by,
          reason: options.reason,
        });
        print(status, describe(target.label, status));
      });
  }

  onTarget('status', 'phase, users, who approved or paused it')
    .option('--watch', 'follow it with a progress bar until it ends')
    .action(async (options: TargetOptions & { watch?: boolean }) => {
      const target = targetOf(options);
      const client = api();
      const read = async () => (await client.get<RunStatus>(target.path)).body;
      if (!options.watch) {
        const status = await read();
        return print(status, describe(target.label, status));
      }
      const status = await watchRun(read, print);
      if (!json()) io.out(`${describe(target.label, status)}\n`);
    });

  onTarget('cancel', 'cancel a run; users already started are cancelled too').action(
    async (options: TargetOptions) => {
      const target = targetOf(options);
      const client = api();
      await client.post(`${target.path}/cancel`);
      // The API answers once the cancellation is asked for; the run ends when it has cancelled its users.
      const read = async () => (await client.get<RunStatus>(target.path)).body;
      const status = await watchRun(read, () => undefined, CANCEL_POLL_MS);
      print(status, describe(target.label, status));
    },
  );

  onTarget(
    'retry-failed',
    'ask again, in a new run, the users of a completed run that failed or expired',
  ).action(async (options: TargetOptions) => {
    const started = await api().post<Started>(`${targetOf(options).path}/retry-failed`);
    print(started, `started ${started.workflowId} for ${started.users} users`);
  });

  onTarget('report', 'every user with their outcome, as CSV (default) or JSON')
    .addOption(new Option('--format <format>', 'csv or json').choices(['csv', 'json']).default('csv'))
    .option('--out <file>', 'write to this file instead of standard output')
    .action(async (options: TargetOptions & { format: 'csv' | 'json'; out?: string }) => {
      const target = targetOf(options);
      const client = api();
      const csv: string[] = [];
      const rows: Array<z.infer<typeof Report>['rows'][number]> = [];
      let cursor: string | undefined;
      // The API's pages, in order: CSV pages concatenate (the header comes with the first only).
      do {
        const query = { limit: MAX_PAGE, cursor };
        if (options.format === 'csv') {
          const page = await client.get<string>(`${target.path}/report`, query, 'text/csv');
          csv.push(page.body);
          cursor = nextCursor(page.headers.link);
        } else {
          const { body } = await client.get<z.infer<typeof Report>>(`${target.path}/report`, query);
          rows.push(...body.rows);
          cursor = body.nextCursor;
        }
      } while (cursor);
      const text = options.format === 'csv' ? csv.join('') : JSON.stringify(rows, null, 2) + '\n';
      if (options.out) await writeFile(options.out, text);
      else io.out(text);
    });

  const commandsIo = { api, env: io.env, json, out: io.out };
  addWebhooksCommands(program, commandsIo);
  addApiKeysCommands(program, commandsIo);

  return program;
}

/** A refused or failed operation ends with its message and exit code 1; a wrong command line or input with 2. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof Error && 'exitCode' in error && 'code' in error) {
      // commander has already printed its message (help, a missing option, an unknown command).
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.err(`error: ${message}\n`);
    return error instanceof DowngradeUsageError ? 2 : 1;
  }
}
