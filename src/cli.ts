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
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { CampaignClient } from './campaignClient.js';
import { DowngradeClient } from './client.js';
import { isPostgresUrl, loadConfig, type Config } from './config.js';
import { campaignReportCsv, reportCsv } from './reportCsv.js';
import { connectTemporalClient } from './temporalConnection.js';
import { addWebhooksCommands } from './cliWebhooks.js';
import { Campaigns } from './store/campaigns.js';
import { CredentialStore } from './store/credentialStore.js';
import { openDatabase, type Database } from './store/database.js';
import { EnterpriseUsers } from './store/enterpriseUsers.js';
import { Keyring } from './store/encryption.js';
import type { OperatorDecision } from './workflows/enterpriseDefinitions.js';
import { operatedRunHasEnded } from './workflows/endings.js';
import type { OperatedStatus } from './workflows/operatorControls.js';

/** A refresh token never goes on a command line, where `ps` and shell history would show it. */
const TOKEN_VARIABLE = 'SERVICE_ACCOUNT_REFRESH_TOKEN';
const PAGE = 1000;

class UsageError extends Error {}

/** What `status` shows of a domain's downgrade or a campaign. */
export type RunStatus = OperatedStatus & {
  userCount: number;
  started: number;
  inFlight: number;
  runs: number;
  reason?: string;
  authorizationUrl?: string;
};

/** The operations every command needs, on a domain or on a campaign. */
interface Target {
  label: string;
  status(): Promise<RunStatus>;
  approve(decision: OperatorDecision & { previewId: string }): Promise<RunStatus>;
  reject(decision: OperatorDecision): Promise<RunStatus>;
  pause(decision: OperatorDecision): Promise<RunStatus>;
  resume(decision: OperatorDecision): Promise<RunStatus>;
  /** Cancels, and answers once the run has ended. */
  cancel(): Promise<RunStatus>;
  /** One page of the report: its CSV text and its rows. */
  report(offset: number, header: boolean): Promise<{ csv: string; rows: unknown[] }>;
}

interface Session {
  downgrades: DowngradeClient;
  campaigns: CampaignClient;
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
  const temporal = await connectTemporalClient(config, payloadEncryption(config).dataConverter);
  const store = database && new CredentialStore(database, Keyring.parse(config.CREDENTIAL_KEYS));
  const defaults = {
    deadlineMs: config.DOWNGRADE_DEADLINE,
    reminderIntervalMs: config.DOWNGRADE_REMINDER_INTERVAL,
    consentRequestLifetimeMs: config.DOWNGRADE_CONSENT_REQUEST_LIFETIME,
    maxPrompts: config.DOWNGRADE_MAX_PROMPTS,
  };
  const common = {
    temporal: temporal.client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    defaults,
    store,
    cronofyCallsPerSecond: config.CRONOFY_CALLS_PER_SECOND,
    temporalUiUrl: config.temporalUiUrl,
  };
  return {
    downgrades: new DowngradeClient({
      ...common,
      enterpriseUsers: database && new EnterpriseUsers(database),
    }),
    campaigns: new CampaignClient({ ...common, campaigns: database && new Campaigns(database) }),
    close: async () => {
      await temporal.close();
      await database?.close();
    },
  };
}

/** The domain or the campaign a command names (the preAction hook made sure it names exactly one). */
function targetOf(session: Session, options: { domain?: string; campaign?: string }): Target {
  const { downgrades, campaigns } = session;
  if (options.domain) {
    const domain = options.domain;
    return {
      label: domain,
      status: () => downgrades.getEnterpriseDowngrade(domain),
      approve: (decision) => downgrades.approveEnterpriseDowngrade(domain, decision),
      reject: (decision) => downgrades.rejectEnterpriseDowngrade(domain, decision),
      pause: (decision) => downgrades.pauseEnterpriseDowngrade(domain, decision),
      resume: (decision) => downgrades.resumeEnterpriseDowngrade(domain, decision),
      cancel: async () => {
        await downgrades.cancelEnterpriseDowngrade(domain);
        return downgrades.waitForEnterpriseResult(domain);
      },
      report: async (offset, header) => {
        const { rows } = await downgrades.getEnterpriseReport(domain, { offset, limit: PAGE });
        return { rows, csv: reportCsv(rows, { header }) };
      },
    };
  }
  const name = options.campaign!;
  return {
    label: `campaign ${name}`,
    status: () => campaigns.getIndividualCampaign(name),
    approve: (decision) => campaigns.approveCampaign(name, decision),
    reject: (decision) => campaigns.rejectCampaign(name, decision),
    pause: (decision) => campaigns.pauseCampaign(name, decision),
    resume: (decision) => campaigns.resumeCampaign(name, decision),
    cancel: async () => {
      await campaigns.cancelCampaign(name);
      return campaigns.waitForCampaignResult(name);
    },
    report: async (offset, header) => {
      const { rows } = await campaigns.getCampaignReport(name, { offset, limit: PAGE });
      return { rows, csv: campaignReportCsv(rows, { header }) };
    },
  };
}

/** One entry per line (a CSV's columns); blank lines and `#` comments are skipped. */
async function readLines(path: string): Promise<string[][]> {
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
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(',').map((cell) => cell.trim()));
}

function serviceAccount(options: { serviceAccountSub?: string }, env: Io['env']) {
  const serviceAccountRefreshToken = env[TOKEN_VARIABLE] || undefined;
  if (!serviceAccountRefreshToken && !options.serviceAccountSub) {
    throw new UsageError(
      `name the service account: --service-account-sub ser_… or ${TOKEN_VARIABLE} in the environment`,
    );
  }
  return { serviceAccountRefreshToken, serviceAccountSub: options.serviceAccountSub };
}

function countsOf(status: RunStatus): string {
  return Object.entries(status.counts)
    .map(([state, count]) => `${state} ${count}`)
    .join(', ');
}

function describe(label: string, status: RunStatus): string {
  const counts = countsOf(status);
  const lines = [
    `${label}: ${status.phase} (run ${status.runs})`,
    `users: ${status.started} of ${status.userCount} started, ${status.inFlight} in flight${counts ? `; ${counts}` : ''}`,
  ];
  const { approval, paused } = status;
  if (approval?.decidedBy) {
    lines.push(`decided by ${approval.decidedBy} at ${approval.decidedAt} (preview ${approval.previewId})`);
  } else if (approval) {
    lines.push(`awaiting approval of preview ${approval.previewId} until ${approval.expiresAt}`);
  }
  if (paused) lines.push(`paused by ${paused.by} at ${paused.at}: ${paused.reason ?? ''}`);
  if (status.authorizationUrl) lines.push(`administrator's consent link: ${status.authorizationUrl}`);
  if (status.reason) lines.push(`reason: ${status.reason}`);
  return lines.join('\n');
}

/** Shows a run's progress each time it changes, until the run ends; answers its last status. */
export async function watchRun(
  read: () => Promise<RunStatus>,
  show: (status: RunStatus, line: string) => void,
  pollMs = 1_000,
): Promise<RunStatus> {
  let last = '';
  for (;;) {
    const status = await read();
    const line = progressBar(status);
    if (line !== last) show(status, line);
    last = line;
    if (operatedRunHasEnded(status.phase)) return status;
    await sleep(pollMs);
  }
}

function progressBar(status: RunStatus, width = 30): string {
  const finished = Object.values(status.counts).reduce<number>((sum, count) => sum + (count ?? 0), 0);
  const done = status.userCount ? Math.round((finished / status.userCount) * width) : 0;
  const counts = countsOf(status);
  return (
    `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${finished}/${status.userCount} · ${status.phase}` +
    `${counts ? ` · ${counts}` : ''}${status.paused ? ` · paused by ${status.paused.by}` : ''}`
  );
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
  /** Runs one command with a session, and always closes it. */
  const withSession =
    <O>(needsDatabase: boolean, run: (session: Session, options: O) => Promise<void>) =>
    async (options: O) => {
      const session = await open(io.config(), { database: needsDatabase });
      try {
        await run(session, options);
      } finally {
        await session.close();
      }
    };
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
          throw new UsageError('name one --domain or one --campaign');
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
      withSession(
        true,
        async (session, options: TargetOptions & { users: string; serviceAccountSub?: string }) => {
          targetOf(session, options);
          const lines = await readLines(options.users);
          if (options.campaign) {
            const preview = await session.campaigns.previewIndividualCampaign({
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
          const preview = await session.downgrades.previewEnterpriseDowngrade({
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
      withSession(
        true,
        async (session, options: TargetOptions & { preview: string; adminEmail?: string }) => {
          const target = targetOf(session, options);
          const started = options.campaign
            ? await session.campaigns.startIndividualCampaign({
                name: options.campaign,
                previewId: options.preview,
              })
            : await session.downgrades.startEnterpriseDowngrade({
                domain: options.domain!,
                previewId: options.preview,
                adminEmail: options.adminEmail,
              });
          print(
            started,
            `started ${target.label} (${started.workflowId}); approve preview ${options.preview}`,
          );
        },
      ),
    );

  onTarget('approve', 'let a run waiting for approval go ahead')
    .requiredOption('--preview <id>', 'the preview the run was started from')
    .addOption(by)
    .action(
      withSession(false, async (session, options: TargetOptions & { preview: string; by: string }) => {
        const target = targetOf(session, options);
        const status = await target.approve({ previewId: options.preview, by: options.by });
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
        withSession(false, async (session, options: TargetOptions & { by: string; reason?: string }) => {
          const target = targetOf(session, options);
          const status = await target[name]({ by: options.by, reason: options.reason });
          print(status, describe(target.label, status));
        }),
      );
  }

  onTarget('status', 'phase, users, who approved or paused it')
    .option('--watch', 'follow it with a progress bar until it ends')
    .action(
      withSession(false, async (session, options: TargetOptions & { watch?: boolean }) => {
        const target = targetOf(session, options);
        if (!options.watch) {
          const status = await target.status();
          return print(status, describe(target.label, status));
        }
        const status = await watchRun(() => target.status(), print);
        if (!json()) io.out(`${describe(target.label, status)}\n`);
      }),
    );

  onTarget('cancel', 'cancel a run; users already started are cancelled too').action(
    withSession(false, async (session, options: TargetOptions) => {
      const target = targetOf(session, options);
      const status = await target.cancel();
      print(status, describe(target.label, status));
    }),
  );

  program
    .command('retry-failed')
    .description('ask again for the failed and expired users of a completed domain downgrade')
    .requiredOption('-d, --domain <domain>', 'the Enterprise Connect domain')
    .action(
      withSession(true, async ({ downgrades }, options: { domain: string }) => {
        const started = await downgrades.retryFailedEnterpriseUsers(options.domain);
        print(started, `started ${started.workflowId} for ${started.users} users`);
      }),
    );

  onTarget('report', 'every user with their outcome, as CSV (default) or JSON')
    .addOption(new Option('--format <format>', 'csv or json').choices(['csv', 'json']).default('csv'))
    .option('--out <file>', 'write to this file instead of standard output')
    .action(
      withSession(
        true,
        async (session, options: TargetOptions & { format: 'csv' | 'json'; out?: string }) => {
          const target = targetOf(session, options);
          const csv: string[] = [];
          const rows: unknown[] = [];
          for (let offset = 0; ; offset += PAGE) {
            const page = await target.report(offset, offset === 0);
            csv.push(page.csv);
            rows.push(...page.rows);
            if (page.rows.length < PAGE) break;
          }
          const text = options.format === 'csv' ? csv.join('') : JSON.stringify(rows, null, 2) + '\n';
          if (options.out) await writeFile(options.out, text);
          else io.out(text);
        },
      ),
    );

  addWebhooksCommands(program, {
    config: () => io.config(),
    json,
    out: io.out,
    usageError: (message) => new UsageError(message),
  });

  return program;
}

function previewText(
  previewId: string,
  label: string,
  preview: {
    users: { count: number; duplicates: number; malformed: number };
    cronofyCalls: { total: number };
    estimatedSeconds: number;
    cronofyCallsPerSecond: number;
    warnings: string[];
  },
  extra: string[] = [],
): string {
  return [
    `preview ${previewId} of ${label}`,
    `users: ${preview.users.count} (${preview.users.duplicates} duplicates and ${preview.users.malformed} malformed dropped)`,
    ...extra,
    `Cronofy calls: ${preview.cronofyCalls.total}, about ${preview.estimatedSeconds} s at ${preview.cronofyCallsPerSecond}/s`,
    ...preview.warnings.map((warning) => `warning: ${warning}`),
  ].join('\n');
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
    return error instanceof UsageError ? 2 : 1;
  }
}
