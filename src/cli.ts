/**
 * `cronofy-downgrade`: operators' commands for Enterprise Connect downgrades (`--domain`) and campaigns of
 * Individual downgrades (`--campaign`), against the Temporal and the configuration the service uses (the same
 * environment variables; the embedded defaults too).
 *
 * approve, reject, pause, resume, cancel and status go through Temporal alone. preview, start, report and
 * retry-failed also open the service's database, which must then be a PostgreSQL DATABASE_URL shared with the
 * service: the embedded file database belongs to the running service.
 */
import { payloadEncryption } from './codec/payloadEncryption.js';
import { readFile, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import {
  CampaignClient,
  CampaignRuns,
  DowngradeUsageError,
  EnterpriseClient,
  EnterpriseRuns,
} from './client.js';
import { describe, previewText, watchRun, type RunStatus } from './cliOutput.js';
import { downgradeDefaults, isPostgresUrl, loadConfig, type Config } from './config.js';
import { campaignReportCsv, reportCsv } from './reportCsv.js';
import { connectTemporalClient } from './temporalConnection.js';
import { addApiKeysCommands } from './cliApiKeys.js';
import { addWebhooksCommands } from './cliWebhooks.js';
import { createStores } from './store/stores.js';
import { openDatabase } from './store/database.js';
import { Keyring } from './store/encryption.js';

/** A refresh token never goes on a command line, where `ps` and shell history would show it. */
const TOKEN_VARIABLE = 'SERVICE_ACCOUNT_REFRESH_TOKEN';
const PAGE = 1000;

/** The clients a command uses: through Temporal alone, or with the service's database too. */
interface Session {
  domains: EnterpriseRuns;
  campaigns: CampaignRuns;
}
interface DatabaseSession extends Session {
  domains: EnterpriseClient;
  campaigns: CampaignClient;
}

async function openTemporal(config: Config) {
  const temporal = await connectTemporalClient(config, payloadEncryption(config).dataConverter);
  const options = {
    temporal: temporal.client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    defaults: downgradeDefaults(config),
    cronofyCallsPerSecond: config.CRONOFY_CALLS_PER_SECOND,
    temporalUiUrl: config.temporalUiUrl,
  };
  return { options, close: () => temporal.close() };
}

async function openDatabaseSession(config: Config): Promise<DatabaseSession & { close(): Promise<void> }> {
  if (!isPostgresUrl(config.DATABASE_URL)) {
    throw new DowngradeUsageError(
      'this command opens the service database: set DATABASE_URL to the PostgreSQL the service uses ' +
        '(the embedded file database belongs to the running service)',
    );
  }
  const database = await openDatabase(config.DATABASE_URL);
  const temporal = await openTemporal(config);
  const { store, enterpriseUsers, campaigns } = createStores(database, Keyring.parse(config.CREDENTIAL_KEYS));
  return {
    domains: new EnterpriseClient({ ...temporal.options, store, users: enterpriseUsers }),
    campaigns: new CampaignClient({ ...temporal.options, store, campaigns }),
    close: async () => {
      await temporal.close();
      await database.close();
    },
  };
}

async function openSession(config: Config): Promise<Session & { close(): Promise<void> }> {
  const temporal = await openTemporal(config);
  return {
    domains: new EnterpriseRuns(temporal.options),
    campaigns: new CampaignRuns(temporal.options.temporal),
    close: temporal.close,
  };
}

/** The domain or the campaign a command names (the preAction hook made sure it names exactly one). */
function runOf<S extends Session>(session: S, options: { domain?: string; campaign?: string }) {
  return options.domain
    ? { runs: session.domains as S['domains'] | S['campaigns'], name: options.domain, label: options.domain }
    : { runs: session.campaigns, name: options.campaign!, label: `campaign ${options.campaign}` };
}

/** One page of a run's report: its CSV text and its rows. */
async function reportPage(
  session: DatabaseSession,
  options: { domain?: string; campaign?: string },
  offset: number,
) {
  const header = offset === 0;
  if (options.domain) {
    const { rows } = await session.domains.report(options.domain, { offset, limit: PAGE });
    return { rows, csv: reportCsv(rows, { header }) };
  }
  const { rows } = await session.campaigns.report(options.campaign!, { offset, limit: PAGE });
  return { rows, csv: campaignReportCsv(rows, { header }) };
}

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

/** What one run of the CLI reads and writes: the process's environment and streams, or a caller's. */
export interface Io {
  /** The service's configuration. */
  config(): Config;
  /** The environment, for the service account's refresh token, which the configuration does not hold. */
  env: Record<string, string | undefined>;
  out(text: string): void;
  err(text: string): void;
}

const processIo: Io = {
  config: () => loadConfig(),
  env: process.env,
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

type TargetOptions = { domain?: string; campaign?: string };

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
  /** Runs one command with a session, and always closes it: through Temporal alone, or with the database too. */
  const within =
    <S extends Session>(openIt: (config: Config) => Promise<S & { close(): Promise<void> }>) =>
    <O>(run: (session: S, options: O) => Promise<void>) =>
    async (options: O) => {
      const session = await openIt(io.config());
      try {
        await run(session, options);
      } finally {
        await session.close();
      }
    };
  const withTemporal = within(openSession);
  const withDatabase = within(openDatabaseSession);
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
    .action(
      withDatabase(
        async (session, options: TargetOptions & { users: string; serviceAccountSub?: string }) => {
          const lines = await readLines(options.users);
          if (options.campaign) {
            const preview = await session.campaigns.preview({
              name: options.campaign,
              users: [
                lines.map(([sub, userId, email]) => ({
                  sub: sub!,
                  userId: userId || undefined,
                  email: email || undefined,
                })),
              ],
            });
            return print(preview, previewText(preview.previewId, `campaign ${preview.name}`, preview));
          }
          const preview = await session.domains.preview({
            domain: options.domain!,
            users: [lines.map(([email]) => email!)],
            ...serviceAccount(options, io.env),
          });
          const account = preview.serviceAccount;
          print(
            preview,
            previewText(preview.previewId, preview.domain, preview, [
              `service account: ${account ? `${account.providerName} (${account.scope}, delegated ${account.delegatedScope})` : 'not read'}`,
            ]),
          );
        },
      ),
    );

  onTarget('start', 'start from a preview; the run waits for approval')
    .requiredOption('--preview <id>', 'the preview to start from')
    .option('--admin-email <address>', "a domain's administrator, who then receives their link by email")
    .action(
      withDatabase(async (session, options: TargetOptions & { preview: string; adminEmail?: string }) => {
        const target = runOf(session, options);
        const started = options.campaign
          ? await session.campaigns.start({
              name: options.campaign,
              previewId: options.preview,
            })
          : await session.domains.start({
              domain: options.domain!,
              previewId: options.preview,
              adminEmail: options.adminEmail,
            });
        print(started, `started ${target.label} (${started.workflowId}); approve preview ${options.preview}`);
      }),
    );

  onTarget('approve', 'let a run waiting for approval go ahead')
    .requiredOption('--preview <id>', 'the preview the run was started from')
    .addOption(by)
    .action(
      withTemporal(async (session, options: TargetOptions & { preview: string; by: string }) => {
        const target = runOf(session, options);
        const status = await target.runs.approve(target.name, { previewId: options.preview, by: options.by });
        print(status, describe(target.label, status));
      }),
    );

  for (const [name, description] of [
    ['reject', 'end a run waiting for approval, with no Cronofy call'],
    ['pause', 'stop starting users and asking Cronofy; waiting users keep waiting'],
    ['resume', 'carry on after a pause or a tripped circuit breaker'],
  ] as const) {
    onTarget(name, description)
      .addOption(by)
      .option('--reason <text>', 'why (recorded on the run)')
      .action(
        withTemporal(async (session, options: TargetOptions & { by: string; reason?: string }) => {
          const target = runOf(session, options);
          const status = await target.runs[name](target.name, { by: options.by, reason: options.reason });
          print(status, describe(target.label, status));
        }),
      );
  }

  onTarget('status', 'phase, users, who approved or paused it')
    .option('--watch', 'follow it with a progress bar until it ends')
    .action(
      withTemporal(async (session, options: TargetOptions & { watch?: boolean }) => {
        const target = runOf(session, options);
        const read = (): Promise<RunStatus> => target.runs.get(target.name);
        if (!options.watch) {
          const status = await read();
          return print(status, describe(target.label, status));
        }
        const status = await watchRun(read, print);
        if (!json()) io.out(`${describe(target.label, status)}\n`);
      }),
    );

  onTarget('cancel', 'cancel a run; users already started are cancelled too').action(
    withTemporal(async (session, options: TargetOptions) => {
      const target = runOf(session, options);
      await target.runs.cancel(target.name);
      const status = await target.runs.waitForResult(target.name);
      print(status, describe(target.label, status));
    }),
  );

  program
    .command('retry-failed')
    .description('ask again for the failed and expired users of a completed domain downgrade')
    .requiredOption('-d, --domain <domain>', 'the Enterprise Connect domain')
    .action(
      withDatabase(async ({ domains }, options: { domain: string }) => {
        const started = await domains.retryFailed(options.domain);
        print(started, `started ${started.workflowId} for ${started.users} users`);
      }),
    );

  onTarget('report', 'every user with their outcome, as CSV (default) or JSON')
    .addOption(new Option('--format <format>', 'csv or json').choices(['csv', 'json']).default('csv'))
    .option('--out <file>', 'write to this file instead of standard output')
    .action(
      withDatabase(async (session, options: TargetOptions & { format: 'csv' | 'json'; out?: string }) => {
        const csv: string[] = [];
        const rows: unknown[] = [];
        for (let offset = 0; ; offset += PAGE) {
          const page = await reportPage(session, options, offset);
          csv.push(page.csv);
          rows.push(...page.rows);
          if (page.rows.length < PAGE) break;
        }
        const text = options.format === 'csv' ? csv.join('') : JSON.stringify(rows, null, 2) + '\n';
        if (options.out) await writeFile(options.out, text);
        else io.out(text);
      }),
    );

  const commandsIo = {
    config: () => io.config(),
    json,
    out: io.out,
    usageError: (message: string) => new DowngradeUsageError(message),
  };
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
