/**
 * `cronofy-downgrade`: operators' commands for Enterprise Connect downgrades, against the Temporal and the
 * configuration the service uses (the same environment variables; the embedded defaults too).
 *
 * approve, reject, pause, resume, cancel and status go through Temporal alone. preview, start, report and
 * retry-failed also open the service's database, which must then be a PostgreSQL DATABASE_URL shared with the
 * service: the embedded file database belongs to the running service.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { DowngradeClient } from './client.js';
import { isPostgresUrl, loadConfig, type Config } from './config.js';
import { reportCsv } from './enterpriseReport.js';
import { connectTemporal, payloadEncryption } from './services.js';
import { CredentialStore } from './store/credentialStore.js';
import { openDatabase, type Database } from './store/database.js';
import { EnterpriseUsers } from './store/enterpriseUsers.js';
import { Keyring } from './store/encryption.js';
import type { EnterpriseStatus } from './workflows/enterpriseDefinitions.js';

/** A refresh token never goes on a command line, where `ps` and shell history would show it. */
const TOKEN_VARIABLE = 'SERVICE_ACCOUNT_REFRESH_TOKEN';
const TERMINAL_PHASES = [
  'completed',
  'failed',
  'expired',
  'denied',
  'read_write_kept',
  'cancelled',
  'rejected',
];

class UsageError extends Error {}

interface Session {
  downgrades: DowngradeClient;
  close(): Promise<void>;
}

async function open(config: Config, options: { database: boolean }): Promise<Session> {
  let database: Database | undefined;
  if (options.database) {
    if (!isPostgresUrl(config.DATABASE_URL)) {
      throw new UsageError(
        'this command opens the service database: set DATABASE_URL to the PostgreSQL the service uses ' +
          '(the embedded file database belongs to the running service)',
      );
    }
    database = await openDatabase(config.DATABASE_URL);
  }
  const temporal = await connectTemporal(config, payloadEncryption(config).dataConverter);
  const downgrades = new DowngradeClient({
    temporal: temporal.client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    defaults: {
      deadlineMs: config.DOWNGRADE_DEADLINE,
      reminderIntervalMs: config.DOWNGRADE_REMINDER_INTERVAL,
      maxPrompts: config.DOWNGRADE_MAX_PROMPTS,
    },
    store: database && new CredentialStore(database, Keyring.parse(config.CREDENTIAL_KEYS)),
    enterpriseUsers: database && new EnterpriseUsers(database),
    cronofyCallsPerSecond: config.CRONOFY_CALLS_PER_SECOND,
  });
  return {
    downgrades,
    close: async () => {
      await temporal.close();
      await database?.close();
    },
  };
}

/** One email per line (a CSV's first column); blank lines and `#` comments are skipped. */
async function readUsers(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(
      `cannot read the user file ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
    );
  }
  return text
    .split(/\r?\n/)
    .map((line) => line.split(',')[0]!.trim())
    .filter((line) => line && !line.startsWith('#'));
}

function serviceAccount(options: { serviceAccountSub?: string }) {
  const serviceAccountRefreshToken = process.env[TOKEN_VARIABLE] || undefined;
  if (!serviceAccountRefreshToken && !options.serviceAccountSub) {
    throw new UsageError(
      `name the service account: --service-account-sub ser_… or ${TOKEN_VARIABLE} in the environment`,
    );
  }
  return { serviceAccountRefreshToken, serviceAccountSub: options.serviceAccountSub };
}

function describe(status: EnterpriseStatus): string {
  const counts = Object.entries(status.counts)
    .map(([state, count]) => `${state} ${count}`)
    .join(', ');
  const lines = [
    `${status.domain}: ${status.phase} (run ${status.runs})`,
    `users: ${status.started} of ${status.userCount} started, ${status.inFlight} in flight${counts ? `; ${counts}` : ''}`,
  ];
  if (status.approval) {
    lines.push(
      status.approval.decidedBy
        ? `decided by ${status.approval.decidedBy} at ${status.approval.decidedAt} (preview ${status.approval.previewId})`
        : `awaiting approval of preview ${status.approval.previewId} until ${status.approval.expiresAt}`,
    );
  }
  if (status.paused)
    lines.push(`paused by ${status.paused.by} at ${status.paused.at}: ${status.paused.reason ?? ''}`);
  if (status.authorizationUrl) lines.push(`administrator's consent link: ${status.authorizationUrl}`);
  if (status.reason) lines.push(`reason: ${status.reason}`);
  return lines.join('\n');
}

function progressBar(status: EnterpriseStatus, width = 30): string {
  const finished = Object.values(status.counts).reduce((sum, count) => sum + (count ?? 0), 0);
  const done = status.userCount ? Math.round((finished / status.userCount) * width) : 0;
  const counts = Object.entries(status.counts)
    .map(([state, count]) => `${state} ${count}`)
    .join(', ');
  return (
    `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${finished}/${status.userCount} · ${status.phase}` +
    `${counts ? ` · ${counts}` : ''}${status.paused ? ` · paused by ${status.paused.by}` : ''}`
  );
}

function print(json: boolean, value: unknown, text: string): void {
  console.log(json ? JSON.stringify(value, null, 2) : text);
}

export function buildProgram(config: () => Config): Command {
  const program = new Command('cronofy-downgrade')
    .description('Operate Enterprise Connect downgrades to Free/Busy')
    .option('--json', 'print JSON for scripts')
    .showHelpAfterError()
    // Inherited by the commands below: main() decides the exit code.
    .exitOverride();
  const json = () => Boolean(program.opts<{ json?: boolean }>().json);
  /** Runs one command with a session, and always closes it. */
  const withSession =
    <A extends unknown[]>(needsDatabase: boolean, run: (session: Session, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      const session = await open(config(), { database: needsDatabase });
      try {
        await run(session, ...args);
      } finally {
        await session.close();
      }
    };
  const domain = new Option('-d, --domain <domain>', 'the Enterprise Connect domain').makeOptionMandatory();
  const by = new Option('--by <operator>', 'who decides (recorded on the run)').makeOptionMandatory();

  program
    .command('preview')
    .description('capture the users and read the service account; change nothing')
    .addOption(domain)
    .requiredOption('--users <file>', 'one email per line')
    .option('--service-account-sub <sub>', `the service account (or ${TOKEN_VARIABLE} in the environment)`)
    .action(
      withSession(
        true,
        async ({ downgrades }, options: { domain: string; users: string; serviceAccountSub?: string }) => {
          const preview = await downgrades.previewEnterpriseDowngrade({
            domain: options.domain,
            users: [await readUsers(options.users)],
            ...serviceAccount(options),
          });
          print(
            json(),
            preview,
            [
              `preview ${preview.previewId} of ${preview.domain}`,
              `users: ${preview.users.count} (${preview.users.duplicates} duplicates and ${preview.users.malformed} malformed dropped)`,
              `service account: ${preview.serviceAccount ? `${preview.serviceAccount.providerName} (${preview.serviceAccount.scope}, delegated ${preview.serviceAccount.delegatedScope})` : 'not read'}`,
              `Cronofy calls: ${preview.cronofyCalls.total}, about ${preview.estimatedSeconds} s at ${preview.cronofyCallsPerSecond}/s`,
              ...preview.warnings.map((warning) => `warning: ${warning}`),
            ].join('\n'),
          );
        },
      ),
    );

  program
    .command('start')
    .description('start a downgrade from a preview; it waits for approval')
    .addOption(domain)
    .requiredOption('--preview <id>', 'the preview to start from')
    .action(
      withSession(true, async ({ downgrades }, options: { domain: string; preview: string }) => {
        const started = await downgrades.startEnterpriseDowngrade({
          domain: options.domain,
          previewId: options.preview,
        });
        print(json(), started, `started ${started.workflowId}; approve preview ${options.preview} to revoke`);
      }),
    );

  program
    .command('approve')
    .description('let a downgrade waiting for approval revoke')
    .addOption(domain)
    .requiredOption('--preview <id>', 'the preview the run was started from')
    .addOption(by)
    .action(
      withSession(false, async ({ downgrades }, options: { domain: string; preview: string; by: string }) => {
        const status = await downgrades.approveEnterpriseDowngrade(options.domain, {
          previewId: options.preview,
          by: options.by,
        });
        print(json(), status, describe(status));
      }),
    );

  for (const [name, description, act] of [
    ['reject', 'end a downgrade waiting for approval, with no Cronofy call', 'rejectEnterpriseDowngrade'],
    [
      'pause',
      'stop starting users and asking Cronofy; waiting users keep waiting',
      'pauseEnterpriseDowngrade',
    ],
    ['resume', 'carry on after a pause or a tripped circuit breaker', 'resumeEnterpriseDowngrade'],
  ] as const) {
    program
      .command(name)
      .description(description)
      .addOption(domain)
      .addOption(by)
      .option('--reason <text>', 'why (recorded on the run)')
      .action(
        withSession(
          false,
          async ({ downgrades }, options: { domain: string; by: string; reason?: string }) => {
            const status = await downgrades[act](options.domain, { by: options.by, reason: options.reason });
            print(json(), status, describe(status));
          },
        ),
      );
  }

  program
    .command('status')
    .description("a domain's downgrade: phase, users, who approved or paused it")
    .addOption(domain)
    .option('--watch', 'follow it with a progress bar until it ends')
    .action(
      withSession(false, async ({ downgrades }, options: { domain: string; watch?: boolean }) => {
        let status = await downgrades.getEnterpriseDowngrade(options.domain);
        if (!options.watch) return print(json(), status, describe(status));
        let last = '';
        for (;;) {
          const line = progressBar(status);
          if (line !== last) print(json(), status, line);
          last = line;
          if (TERMINAL_PHASES.includes(status.phase)) break;
          await sleep(1_000);
          status = await downgrades.getEnterpriseDowngrade(options.domain);
        }
        if (!json()) console.log(describe(status));
      }),
    );

  program
    .command('cancel')
    .description('cancel a downgrade; users already started are cancelled too')
    .addOption(domain)
    .action(
      withSession(false, async ({ downgrades }, options: { domain: string }) => {
        await downgrades.cancelEnterpriseDowngrade(options.domain);
        const status = await downgrades.waitForEnterpriseResult(options.domain);
        print(json(), status, describe(status));
      }),
    );

  program
    .command('retry-failed')
    .description('ask again for the failed and expired users of a completed downgrade')
    .addOption(domain)
    .action(
      withSession(true, async ({ downgrades }, options: { domain: string }) => {
        const started = await downgrades.retryFailedEnterpriseUsers(options.domain);
        print(json(), started, `started ${started.workflowId} for ${started.users} users`);
      }),
    );

  program
    .command('report')
    .description('every user with their outcome, as CSV (default) or JSON')
    .addOption(domain)
    .addOption(new Option('--format <format>', 'csv or json').choices(['csv', 'json']).default('csv'))
    .option('--out <file>', 'write to this file instead of standard output')
    .action(
      withSession(
        true,
        async ({ downgrades }, options: { domain: string; format: 'csv' | 'json'; out?: string }) => {
          const pages: string[] = [];
          const rows = [];
          for (let offset = 0; ; offset += 1000) {
            const page = await downgrades.getEnterpriseReport(options.domain, { offset, limit: 1000 });
            if (options.format === 'csv') pages.push(reportCsv(page.rows, { header: offset === 0 }));
            else rows.push(...page.rows);
            if (page.rows.length < 1000) break;
          }
          const text = options.format === 'csv' ? pages.join('') : JSON.stringify(rows, null, 2) + '\n';
          if (options.out) await writeFile(options.out, text);
          else process.stdout.write(text);
        },
      ),
    );

  return program;
}

/** A refused or failed operation ends with its message and exit code 1; a wrong command line or input with 2. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram(() => loadConfig());
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof Error && 'exitCode' in error && 'code' in error) {
      // commander has already printed its message (help, a missing option, an unknown command).
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`error: ${message}`);
    return error instanceof UsageError ? 2 : 1;
  }
}
