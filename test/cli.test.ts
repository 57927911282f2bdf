/**
 * The operators' CLI against the test stack's Temporal and a PostgreSQL the stack's worker shares: each command's
 * normal path, a bad input per command with its message and exit code, and the binary as a process of its own.
 */
import assert from 'node:assert/strict';
import { API_KEY_PATTERN } from '../src/contracts/apiKeyFormat.js';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import got from 'got';
import { z } from 'zod';
import {
  approveAsAdministrator,
  createDomain,
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  waitForState,
  startStack,
  STATE_SECRET,
  TEST_CREDENTIAL_KEYS,
  TEST_PAYLOAD_ENCRYPTION_KEYS,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import { waitUntil } from '../harness/waitUntil.js';
import { main } from '../src/cli.js';
import { API_SCOPES, ApiKeys } from '../src/store/apiKeys.js';
import { startCodecServer } from '../src/codec/codecServer.js';
import { parseConfig } from '../src/config.js';
import { temporalCliPath } from '../src/temporalDevServer.js';
import { enterpriseDowngradeId } from '../src/workflows/enterpriseDefinitions.js';
import {
  campaignUserWorkflowId,
  campaignWorkflowId,
  getCampaignStatus,
} from '../src/workflows/campaignDefinitions.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'cronofy-downgrade.mjs');

let stack: Stack;
let worker: RunningWorker;
let scratch: { url: string; drop(): Promise<void> };
let workdir: string;

before(async () => {
  scratch = await createScratchDatabase(testPostgresUrl(), 'cli');
  stack = await startStack({ databaseUrl: scratch.url, cronofyCallsPerSecond: 25 });
  worker = await stack.startWorker();
  workdir = await mkdtemp(join(tmpdir(), 'cli-test-'));
});

after(async () => {
  await worker?.stop();
  await stack?.stop();
  await scratch?.drop();
  if (workdir) await rm(workdir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment the service runs with, which the CLI reads as well. */
function serviceEnvironment(env: Record<string, string>): Record<string, string | undefined> {
  return {
    TEMPORAL_ADDRESS: stack.env.address,
    TEMPORAL_TASK_QUEUE: stack.taskQueue,
    PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS,
    CREDENTIAL_KEYS: TEST_CREDENTIAL_KEYS,
    STATE_SIGNING_SECRET: STATE_SECRET,
    CODEC_SERVER_TOKEN: CODEC_TOKEN,
    DATABASE_URL: scratch.url,
    ...env,
  };
}

/**
 * Runs a command through the CLI's `main`, in this process, configured by environment as the service is: what an
 * operator's command does, without the cost of a process per command (one test below spawns the real binary).
 */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const environment = serviceEnvironment(env);
  const run = { code: 0, stdout: '', stderr: '' };
  run.code = await main(['node', 'cronofy-downgrade', ...args], {
    config: () => parseConfig(environment),
    env: environment,
    out: (text) => void (run.stdout += text),
    err: (text) => void (run.stderr += text),
  });
  return run;
}

/** Runs the CLI as an operator would: the binary in a process of its own, in a directory of its own. */
function spawnCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: workdir, env: { PATH: process.env.PATH, ...serviceEnvironment({}) }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const CODEC_TOKEN = 'cli-test-codec-token-0123456789';

function temporalCli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(temporalCliPath(), args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

function assertFails(run: Run, code: number, message: RegExp) {
  assert.equal(run.code, code, `exit code (stderr: ${run.stderr})`);
  assert.match(run.stderr, message);
}

const Json = z.record(z.string(), z.unknown());
const parse = (run: Run) => {
  assert.equal(run.code, 0, run.stderr);
  return Json.parse(JSON.parse(run.stdout));
};

async function usersFile(name: string, lines: string[]): Promise<string> {
  const path = join(workdir, name);
  await writeFile(path, lines.join('\n') + '\n');
  return path;
}

async function waitForPhase(domain: string, phase: string) {
  return waitUntil(`${domain} reaches ${phase}`, async () => {
    const status = await stack.enterprise.get(domain);
    return status.phase === phase && status;
  });
}

describe('cronofy-downgrade', () => {
  test('preview, start, approve, status --watch and report take a domain from Read/Write to a CSV of outcomes', async () => {
    const domain = 'cli.example.org';
    const emails = Array.from({ length: 40 }, (_, i) => `user${i}@${domain}`);
    const serviceAccount = await createDomain(stack, domain, emails);
    const file = await usersFile('users.csv', ['# exported users', ...emails, emails[0]!, 'broken']);
    const token = { SERVICE_ACCOUNT_REFRESH_TOKEN: serviceAccount.refresh_token };
    const refused = [emails[5]!, emails[6]!];
    await got.put(`${stack.simulator.url}/_sim/enterprise/outcomes`, {
      json: {
        byEmail: Object.fromEntries(
          refused.map((email) => [email, { kind: 'error', error: 'unable_to_grant_scope' }]),
        ),
      },
    });

    const preview = parse(await cli(['--json', 'preview', '--domain', domain, '--users', file], token));
    const previewId = z.string().parse(preview.previewId);
    assert.deepEqual(preview.users, {
      count: 40,
      duplicates: 1,
      malformed: 1,
      examples: { duplicates: [emails[0]], malformed: ['broken'] },
    });
    const text = await cli(['preview', '--domain', domain, '--users', file], token);
    assert.equal(text.code, 0, text.stderr);
    assert.match(
      text.stdout,
      /^preview pv_\S+ of cli\.example\.org\nusers: 40 \(1 duplicates and 1 malformed dropped\)/,
    );
    assert.match(
      text.stdout,
      /service account: google \(service_account\/accounts\/manage, delegated read_write\)/,
    );
    assert.doesNotMatch(text.stdout + text.stderr, new RegExp(serviceAccount.refresh_token));

    const started = await cli(['start', '--domain', domain, '--preview', previewId]);
    assert.equal(started.code, 0, started.stderr);
    await waitForPhase(domain, 'awaiting_approval');
    const status = await cli(['status', '--domain', domain]);
    assert.match(status.stdout, new RegExp(`awaiting approval of preview ${previewId}`));
    assert.match(status.stdout, /users: 0 of 40 started/);

    assertFails(
      await cli(['approve', '--domain', domain, '--preview', 'pv_stale', '--by', 'ops@example.com']),
      1,
      /error: preview pv_stale is not the one this run was started from/,
    );
    const approved = await cli([
      'approve',
      '--domain',
      domain,
      '--preview',
      previewId,
      '--by',
      'ops@example.com',
    ]);
    assert.equal(approved.code, 0, approved.stderr);
    assert.match(approved.stdout, /decided by ops@example\.com at \S+ \(preview pv_/);

    const watching = cli(['status', '--domain', domain, '--watch']);
    await approveAsAdministrator(stack, domain);
    const watched = await watching;
    assert.equal(watched.code, 0, watched.stderr);
    const bars = watched.stdout.split('\n').filter((line) => line.startsWith('['));
    assert.ok(bars.length >= 2, watched.stdout);
    assert.match(bars.at(-1)!, /^\[#{30}\] 40\/40 · completed · completed 38, failed 2$/);
    console.log(`status --watch:\n${watched.stdout}`);

    const csv = await cli(['report', '--domain', domain]);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines.length, 41);
    assert.equal(lines[0], 'position,email,state,reason,provider_name,recorded_at');
    assert.ok(
      lines
        .slice(1)
        .every((line, i) =>
          line.startsWith(
            refused.includes(emails[i]!)
              ? `${i},${emails[i]},failed,unable_to_grant_scope,,`
              : `${i},${emails[i]},completed,,google_free_busy,`,
          ),
        ),
      csv.stdout,
    );
    const out = join(workdir, 'report.json');
    const json = await cli(['report', '--domain', domain, '--format', 'json', '--out', out]);
    assert.equal(json.code, 0, json.stderr);
    const { readFile } = await import('node:fs/promises');
    assert.equal(z.array(z.unknown()).parse(JSON.parse(await readFile(out, 'utf8'))).length, 40);

    // The two refused users, asked again with the service account already verified.
    await got.put(`${stack.simulator.url}/_sim/enterprise/outcomes`, { json: {} });
    const retried = await cli(['retry-failed', '--domain', domain]);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, /^started downgrade-enterprise-cli\.example\.org for 2 users/);
    const again = await stack.enterprise.waitForResult(domain);
    assert.deepEqual([again.phase, again.counts], ['completed', { completed: 2 }]);
  });

  test('a campaign from a file of subs: preview, start, approve, status and report', async () => {
    const people = await Promise.all(
      Array.from({ length: 5 }, (_, i) => createReadWriteUser(stack, `cli-camper${i}@example.com`)),
    );
    const file = await usersFile('campaign.csv', [...people.map((p, i) => `${p.sub},u${i}`), 'nobody']);
    const preview = parse(await cli(['--json', 'preview', '--campaign', 'cli', '--users', file]));
    assert.deepEqual(preview.users, {
      count: 5,
      duplicates: 0,
      malformed: 1,
      examples: { duplicates: [], malformed: ['nobody'] },
    });
    const previewId = String(preview.previewId);
    assert.equal((await cli(['start', '--campaign', 'cli', '--preview', previewId])).code, 0);
    const waiting = await cli(['status', '--campaign', 'cli']);
    assert.match(waiting.stdout, /^campaign cli: awaiting_approval/);
    const approved = await cli(['approve', '--campaign', 'cli', '--preview', previewId, '--by', 'ops']);
    assert.equal(approved.code, 0, approved.stderr);

    const campaign = await stack.env.client.workflow
      .getHandle(campaignWorkflowId('cli'))
      .query(getCampaignStatus);
    await Promise.all(
      people.map(async (person, position) => {
        const workflowId = campaignUserWorkflowId(campaignWorkflowId('cli'), campaign.captureId, position);
        const status = await waitForState(stack, workflowId, (state) => state === 'awaiting_reauthorization');
        const location = await decideOnConsentPage(status.authorizationUrl!, 'free_busy_google', {
          email: person.email,
        });
        assert.equal((await followRedirect(location)).status, 303);
      }),
    );
    const watched = await cli(['status', '--campaign', 'cli', '--watch']);
    assert.match(watched.stdout, /\[#{30}\] 5\/5 · completed · completed 5\n/);
    const report = await cli(['report', '--campaign', 'cli']);
    assert.equal(report.code, 0, report.stderr);
    const lines = report.stdout.trim().split('\n');
    assert.equal(lines[0], 'position,sub,user_id,state,reason,provider_name,recorded_at');
    assert.deepEqual(
      lines.slice(1).map((line) => line.split(',').slice(0, 6).join(',')),
      people.map((p, i) => `${i},${p.sub},u${i},completed,,google_free_busy`),
    );
  });

  test('reject, pause, resume and cancel answer with the run, and refuse what does not fit its phase', async () => {
    const domain = 'cli-ops.example.org';
    const emails = Array.from({ length: 60 }, (_, i) => `user${i}@${domain}`);
    const serviceAccount = await createDomain(stack, domain, emails);
    const file = await usersFile('ops.txt', emails);
    const sub = ['--service-account-sub', serviceAccount.service_account_id];

    // Rejected: the run ends without a Cronofy call.
    const first = parse(await cli(['--json', 'preview', '--domain', domain, '--users', file, ...sub]));
    assert.equal((await cli(['start', '--domain', domain, '--preview', String(first.previewId)])).code, 0);
    await waitForPhase(domain, 'awaiting_approval');
    assertFails(
      await cli(['pause', '--domain', domain, '--by', 'ops']),
      1,
      /is awaiting_approval, not moving_users/,
    );
    const rejected = await cli(['reject', '--domain', domain, '--by', 'security', '--reason', 'not yet']);
    assert.equal(rejected.code, 0, rejected.stderr);
    assert.match(rejected.stdout, /: rejected/);
    assertFails(await cli(['reject', '--domain', domain, '--by', 'security']), 1, /has ended \(rejected\)/);

    // Paused, resumed, cancelled: no user ever answers, so the domain is still moving throughout.
    await got.put(`${stack.simulator.url}/_sim/enterprise/outcomes`, {
      json: { default: { kind: 'no_callback' } },
    });
    const second = parse(await cli(['--json', 'preview', '--domain', domain, '--users', file, ...sub]));
    assert.equal((await cli(['start', '--domain', domain, '--preview', String(second.previewId)])).code, 0);
    await waitForPhase(domain, 'awaiting_approval');
    assert.equal(
      (await cli(['approve', '--domain', domain, '--preview', String(second.previewId), '--by', 'ops'])).code,
      0,
    );
    await approveAsAdministrator(stack, domain);
    await waitForPhase(domain, 'moving_users');
    const paused = parse(
      await cli(['--json', 'pause', '--domain', domain, '--by', 'ops', '--reason', 'call']),
    );
    assert.equal(paused.phase, 'paused');
    assert.deepEqual(z.object({ by: z.string(), reason: z.string() }).loose().parse(paused.paused), {
      ...(paused.paused as object),
      by: 'ops',
      reason: 'call',
    });
    assertFails(await cli(['pause', '--domain', domain, '--by', 'ops']), 1, /is paused, not moving_users/);
    assertFails(await cli(['resume', '--domain', domain]), 2, /required option '--by <operator>'/);
    const resumed = await cli(['resume', '--domain', domain, '--by', 'ops']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /: moving_users/);

    // The same updates from the Temporal CLI, through the codec server as docs/operators.md shows.
    const codecServer = await startCodecServer({
      codec: stack.codec,
      token: CODEC_TOKEN,
      allowedOrigin: 'http://127.0.0.1:8233',
      host: '127.0.0.1',
      port: 0,
    });
    try {
      const update = (name: string, input: object) =>
        temporalCli([
          'workflow',
          'update',
          'execute',
          '--address',
          stack.env.address,
          '--workflow-id',
          enterpriseDowngradeId(domain),
          '--name',
          name,
          '--input',
          JSON.stringify(input),
          '--codec-endpoint',
          codecServer.url,
          '--codec-auth',
          `Bearer ${CODEC_TOKEN}`,
          '--output',
          'json',
        ]);
      const byTemporal = await update('pause', { by: 'temporal-cli', reason: 'from the Temporal CLI' });
      assert.equal(byTemporal.code, 0, byTemporal.stderr);
      assert.match(byTemporal.stdout, /"phase": "paused"/);
      assert.equal((await stack.enterprise.get(domain)).paused?.by, 'temporal-cli');
      const refused = await update('pause', { by: 'temporal-cli' });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /is paused, not moving_users/);
      assert.equal((await update('resume', { by: 'temporal-cli' })).code, 0);
    } finally {
      await codecServer.close();
    }
    // A running domain is refused at once, not waited for.
    assertFails(
      await cli(['retry-failed', '--domain', domain]),
      1,
      /is still \w+; retry its failed users once it has completed/,
    );
    const cancelled = await cli(['cancel', '--domain', domain]);
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.match(cancelled.stdout, /: cancelled/);
    assertFails(await cli(['retry-failed', '--domain', domain]), 1, /ended cancelled; only a completed one/);
    await got.put(`${stack.simulator.url}/_sim/enterprise/outcomes`, { json: {} });
  });

  test('bad input: unreadable files, unknown domains and previews, no service account, the embedded database', async () => {
    const file = await usersFile('one.txt', ['someone@nowhere.example.org']);
    assertFails(
      await cli([
        'preview',
        '--domain',
        'x.example.org',
        '--users',
        join(workdir, 'missing.txt'),
        '--service-account-sub',
        'ser_1',
      ]),
      2,
      /error: cannot read the user file .*missing\.txt \(ENOENT\)/,
    );
    assertFails(
      await cli(['preview', '--domain', 'x.example.org', '--users', file]),
      2,
      /name the service account/,
    );
    assertFails(
      await cli(['preview', '--domain', 'x.example.org', '--users', file, '--service-account-sub', 'ser_1'], {
        DATABASE_URL: 'file:.data/credentials',
      }),
      2,
      /set DATABASE_URL to the PostgreSQL the service uses/,
    );
    assertFails(
      await cli(['start', '--domain', 'x.example.org', '--preview', 'pv_unknown']),
      1,
      /no preview pv_unknown/,
    );
    for (const command of [
      ['status'],
      ['approve', '--preview', 'pv_1', '--by', 'ops'],
      ['reject', '--by', 'ops'],
      ['pause', '--by', 'ops'],
      ['resume', '--by', 'ops'],
      ['cancel'],
      ['retry-failed'],
      ['report'],
    ]) {
      assertFails(
        await cli([command[0]!, '--domain', 'unknown.example.org', ...command.slice(1)]),
        1,
        /no downgrade with id downgrade-enterprise-unknown\.example\.org/,
      );
    }
    assertFails(
      await cli(['report', '--domain', 'x', '--format', 'xml']),
      2,
      /Allowed choices are csv, json/,
    );
    assertFails(await cli(['frobnicate']), 2, /unknown command 'frobnicate'/);
    assertFails(await cli(['status']), 2, /name one --domain or one --campaign/);
    assertFails(
      await cli(['status', '--domain', 'a.example.org', '--campaign', 'b']),
      2,
      /name one --domain or one --campaign/,
    );
    assertFails(
      await cli(['pause', '--campaign', 'unknown', '--by', 'ops']),
      1,
      /no downgrade with id downgrade-campaign-unknown/,
    );
  });

  test('api-keys: create shows the key once, list and revoke manage it; the key authenticates until revoked', async () => {
    const created = parse(
      await cli([
        '--json',
        'api-keys',
        'create',
        '--name',
        'billing',
        '--scopes',
        'downgrades:write,downgrades:read',
      ]),
    );
    const key = String(created.key);
    assert.match(key, /^cdk_/);
    const keys = new ApiKeys(stack.database);
    assert.deepEqual((await keys.authenticate(key))?.scopes, ['downgrades:write', 'downgrades:read']);
    const listed = await cli(['api-keys', 'list']);
    assert.match(
      listed.stdout,
      new RegExp(`${String(created.id)}  billing  \\[downgrades:write downgrades:read\\]`),
    );
    assert.equal(listed.stdout.includes(API_KEY_PATTERN.exec(key)![2]!), false, 'a key is shown once only');
    assert.equal((await cli(['api-keys', 'revoke', String(created.id)])).code, 0);
    assert.equal(await keys.authenticate(key), undefined);
    assertFails(await cli(['api-keys', 'revoke', 'no-such-key']), 2, /no API key no-such-key/);
    assertFails(
      await cli(['api-keys', 'create', '--name', 'x', '--scopes', 'downgrades:delete']),
      2,
      /--scopes: downgrades:delete; scopes are/,
    );
    const admin = parse(await cli(['--json', 'api-keys', 'create', '--name', 'admin', '--scopes', 'all']));
    assert.equal((admin.scopes as string[]).length, API_SCOPES.length);
  });

  test('the binary: output on stdout, errors on stderr, exit codes 0, 1 and 2', async () => {
    const help = await spawnCli(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: cronofy-downgrade/);
    const unknown = await spawnCli(['status', '--domain', 'unknown.example.org']);
    assertFails(unknown, 1, /^error: no downgrade with id downgrade-enterprise-unknown\.example\.org/);
    assert.equal(unknown.stdout, '');
    assertFails(await spawnCli(['frobnicate']), 2, /unknown command 'frobnicate'/);
  });
});
