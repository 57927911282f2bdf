/**
 * The operators' CLI against the HTTP API on the test stack (its Temporal, its worker, a PostgreSQL of its own): each
 * command's normal path, a bad input per command with its message and exit code, the API's refusals (no service,
 * no key, a key without the scope), and the binary as a process of its own.
 */
import assert from 'node:assert/strict';
import { API_KEY_PATTERN } from '../src/contracts/apiKeyFormat.js';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
  startStack,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import { freePort } from '../harness/ports.js';
import { waitUntil } from '../harness/waitUntil.js';
import { startApiServer } from '../src/api/server.js';
import { main } from '../src/cli.js';
import { API_SCOPES, ApiKeys } from '../src/store/apiKeys.js';
import { startCodecServer } from '../src/codec/codecServer.js';
import { temporalCliPath } from '../src/temporalDevServer.js';
import { getStatus, individualDowngradeId } from '../src/workflows/definitions.js';
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
let api: { url: string; close(): Promise<void> };
/** The operators' key: every scope, as `npm start`'s API_ADMIN_KEY. */
let adminKey: string;

before(async () => {
  scratch = await createScratchDatabase(testPostgresUrl(), 'cli');
  stack = await startStack({ databaseUrl: scratch.url, cronofyCallsPerSecond: 25 });
  worker = await stack.startWorker();
  workdir = await mkdtemp(join(tmpdir(), 'cli-test-'));
  adminKey = (await stack.api.keys.create('cli-test admin', API_SCOPES)).key;
  const server = await startApiServer(stack.api, { host: '127.0.0.1', port: 0, logLevel: 'silent' });
  api = { url: server.url, close: () => server.app.close() };
});

after(async () => {
  await api?.close();
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

/** What an operator sets to use the CLI against a service elsewhere: the API's URL and a key. */
function cliEnvironment(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return { CRONOFY_DOWNGRADE_API_URL: api.url, CRONOFY_DOWNGRADE_API_KEY: adminKey, ...env };
}

/**
 * Runs a command through the CLI's `main`, in this process, configured by environment as an operator's shell is:
 * what an operator's command does, without the cost of a process per command (one test below spawns the binary).
 * `cwd` is where it looks for `npm start`'s .data/local-secrets.json (none in `workdir`).
 */
async function cli(
  args: string[],
  env: Record<string, string | undefined> = {},
  cwd = workdir,
): Promise<Run> {
  const environment = cliEnvironment(env);
  const run = { code: 0, stdout: '', stderr: '' };
  run.code = await main(['node', 'cronofy-downgrade', ...args], {
    env: environment,
    cwd,
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
      { cwd: workdir, env: { PATH: process.env.PATH, ...cliEnvironment({}) }, timeout: 60_000 },
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
const parseArray = (run: Run) => {
  assert.equal(run.code, 0, run.stderr);
  return z.array(Json).parse(JSON.parse(run.stdout));
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
    const rows = z
      .array(z.object({ position: z.int(), email: z.string(), state: z.string() }))
      .parse(JSON.parse(await readFile(out, 'utf8')));
    assert.deepEqual(
      rows.map((row) => [row.position, row.email, row.state]),
      emails.map((email, i) => [i, email, refused.includes(email) ? 'failed' : 'completed']),
    );

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
        // A campaign's person's downgrade, read from Temporal (IndividualClient answers for its own ids only).
        const authorizationUrl = await waitUntil(`${workflowId} awaits its person`, async () => {
          const status = await stack.env.client.workflow.getHandle(workflowId).query(getStatus);
          return status.state === 'awaiting_reauthorization' && status.authorizationUrl;
        });
        const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', {
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

  test('bad input: unreadable files, unknown domains and previews, no service account', async () => {
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
    // The API's own validation, with where in the file: an email a campaign's person cannot have.
    const badEmail = await usersFile('bad-email.csv', ['acc_1,u1,one@example.com', 'acc_2,u2,not an email']);
    assertFails(
      await cli(['preview', '--campaign', 'bad', '--users', badEmail]),
      2,
      /bad-email\.csv, entries 1 to 2: the request does not match its schema; body\.people\.1\.email: /,
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
    assertFails(
      await cli(['status', '--domain', 'bad name!']),
      2,
      /the request does not match its schema; params\.name: /,
    );
  });

  test('the API: where it is, which key, and what it refuses, each said plainly and never with the key', async () => {
    const status = ['status', '--domain', 'unknown.example.org'];
    // Nothing listens there: the CLI says where it looked and what runs the service.
    const closed = `http://127.0.0.1:${await freePort()}`;
    assertFails(
      await cli(status, { CRONOFY_DOWNGRADE_API_URL: closed }),
      1,
      new RegExp(
        `^error: cannot reach the service's API at ${closed} \\(ECONNREFUSED\\): is the service running\\? \`npm start\` runs it`,
      ),
    );
    // Without CRONOFY_DOWNGRADE_API_URL, the API npm start serves on API_PORT of this machine.
    const port = closed.split(':').at(-1)!;
    assertFails(
      await cli(status, { CRONOFY_DOWNGRADE_API_URL: undefined, API_PORT: port }),
      1,
      new RegExp(`cannot reach the service's API at http://127\\.0\\.0\\.1:${port} `),
    );
    const forged = `cdk_0123456789abcdef_${'x'.repeat(43)}`;
    const unknownKey = await cli(status, { CRONOFY_DOWNGRADE_API_KEY: forged });
    assertFails(
      unknownKey,
      1,
      /the service refused the API key \(unauthenticated\): the key from CRONOFY_DOWNGRADE_API_KEY is not a valid key of this service; set CRONOFY_DOWNGRADE_API_KEY to one/,
    );
    assert.doesNotMatch(unknownKey.stderr + unknownKey.stdout, /x{43}/);
    const reader = (await stack.api.keys.create('cli-test reader', ['operators:read'])).key;
    const refused = await cli(['reject', '--domain', 'unknown.example.org', '--by', 'ops'], {
      CRONOFY_DOWNGRADE_API_KEY: reader,
    });
    assertFails(
      refused,
      1,
      /this needs an API key with the scope operators:approve \(the API key from CRONOFY_DOWNGRADE_API_KEY; CRONOFY_DOWNGRADE_API_KEY sets another\)/,
    );
    assert.equal((refused.stderr + refused.stdout).includes(reader), false);
    assertFails(
      await cli(status, { CRONOFY_DOWNGRADE_API_KEY: reader }),
      1,
      /no downgrade with id downgrade-enterprise-unknown\.example\.org/,
    );

    // No key set: the admin key npm start keeps in .data/local-secrets.json where the CLI runs, outside production.
    const noKey = { CRONOFY_DOWNGRADE_API_KEY: undefined };
    assertFails(await cli(status, noKey), 2, /^error: no API key: set CRONOFY_DOWNGRADE_API_KEY to a key/);
    const clone = await mkdtemp(join(workdir, 'clone-'));
    await mkdir(join(clone, '.data'));
    await writeFile(join(clone, '.data', 'local-secrets.json'), JSON.stringify({ API_ADMIN_KEY: adminKey }));
    assertFails(await cli(status, noKey, clone), 1, /no downgrade with id downgrade-enterprise-unknown/);
    assertFails(
      await cli(status, { ...noKey, NODE_ENV: 'production' }, clone),
      2,
      /no API key: set CRONOFY_DOWNGRADE_API_KEY .*api-keys create --database/,
    );
    // API_ADMIN_KEY, as the service's own environment has it, comes before the file.
    assertFails(
      await cli(status, { ...noKey, API_ADMIN_KEY: forged }, clone),
      1,
      /the key from API_ADMIN_KEY is not a valid key/,
    );
    // Something else answers there.
    assertFails(
      await cli(status, { CRONOFY_DOWNGRADE_API_URL: `${stack.simulator.url}/nothing` }),
      1,
      /answered GET \/v1\/domains\/unknown\.example\.org with 404: is it this service's API\?/,
    );
  });

  test('a preview of any size goes up in pages, and a report of any size comes down in pages', async () => {
    const domain = 'big.example.org';
    const emails = Array.from({ length: 12_001 }, (_, i) => `user${i}@${domain}`);
    const file = await usersFile('big.txt', [...emails, emails[7]!]);
    const preview = parse(
      await cli([
        '--json',
        'preview',
        '--domain',
        domain,
        '--users',
        file,
        '--service-account-sub',
        'ser_big',
      ]),
    );
    assert.deepEqual(z.object({ count: z.int(), duplicates: z.int() }).loose().parse(preview.users), {
      ...(preview.users as object),
      count: 12_001,
      duplicates: 1,
    });
    const previewId = String(preview.previewId);
    assert.equal((await cli(['start', '--domain', domain, '--preview', previewId])).code, 0);
    await waitForPhase(domain, 'awaiting_approval');
    const csv = await cli(['report', '--domain', domain]);
    assert.equal(csv.code, 0, csv.stderr);
    const lines = csv.stdout.trim().split('\n');
    assert.equal(lines.length, 12_002);
    assert.equal(lines.filter((line) => line.startsWith('position,')).length, 1, 'one header');
    assert.ok(lines.slice(1).every((line, i) => line.startsWith(`${i},${emails[i]},pending,`)));
    const json = await cli(['report', '--domain', domain, '--format', 'json']);
    const rows = z.array(z.object({ position: z.int() })).parse(JSON.parse(json.stdout));
    assert.deepEqual(
      rows.map((row) => row.position),
      emails.map((_, i) => i),
    );
    const rejected = await cli(['reject', '--domain', domain, '--by', 'ops', '--reason', 'a test']);
    assert.match(rejected.stdout, /^big\.example\.org: rejected/);
  });

  test('webhooks: status, failed events listed and redelivered, the endpoint enabled again after a 410', async () => {
    const status = parse(await cli(['--json', 'webhooks', 'status']));
    assert.equal(status.state, 'enabled');
    assert.match(
      (await cli(['webhooks', 'status'])).stdout,
      /^webhook endpoint: enabled\nundelivered: \d+ pending, \d+ failed\n$/,
    );

    // One person's events fail their whole schedule, then go out after a redelivery.
    const person = await createReadWriteUser(stack, 'cli-webhooks@example.com');
    const workflowId = individualDowngradeId(person.sub);
    stack.webhook.failFor(workflowId, 6);
    await stack.individual.startWithLink({ sub: person.sub, refreshToken: person.refresh_token });
    const failed = await waitUntil('an event of the person fails its whole schedule', async () => {
      const events = parseArray(await cli(['--json', 'webhooks', 'list', '--failed']));
      return events.some((event) => event.stream === workflowId) && events;
    });
    assert.ok(failed.every((event) => event.status === 'failed'));
    const listed = await cli(['webhooks', 'list', '--failed']);
    assert.match(
      listed.stdout,
      new RegExp(
        `^\\S+ webhook ${workflowId} authorization_required recorded \\S+: failed after \\d+ attempts \\(`,
        'm',
      ),
    );
    const redelivered = await cli([
      'webhooks',
      'redeliver',
      '--downgrade',
      workflowId,
      '--channel',
      'webhook',
    ]);
    assert.equal(redelivered.code, 0, redelivered.stderr);
    assert.match(redelivered.stdout, /^1 failed events queued for delivery again\n$/);
    await waitUntil('the redelivered event arrives', async () => {
      const events = parseArray(await cli(['--json', 'webhooks', 'list', '--downgrade', workflowId]));
      return events.length > 0 && events.every((event) => event.status === 'delivered');
    });
    assert.match(
      (await cli(['webhooks', 'list', '--downgrade', workflowId])).stdout,
      new RegExp(`^\\S+ webhook ${workflowId} authorization_required recorded \\S+: delivered \\S+$`, 'm'),
    );
    assert.equal((await cli(['webhooks', 'list', '--failed'])).stdout, 'no events\n');

    // Another person's event is answered 410: the endpoint is disabled until an operator enables it.
    const gone = await createReadWriteUser(stack, 'cli-webhooks-gone@example.com');
    const goneId = individualDowngradeId(gone.sub);
    stack.webhook.failFor(goneId, 1, 410);
    await stack.individual.startWithLink({ sub: gone.sub, refreshToken: gone.refresh_token });
    const disabled = await waitUntil('the endpoint is disabled', async () => {
      const run = await cli(['webhooks', 'status']);
      return /^webhook endpoint: disabled since \S+ \(answered 410\)/.test(run.stdout) && run;
    });
    assert.equal(disabled.code, 0);
    const enabled = await cli(['webhooks', 'enable']);
    assert.equal(enabled.code, 0, enabled.stderr);
    assert.equal(enabled.stdout, 'webhook endpoint enabled\n');
    assert.equal((await cli(['webhooks', 'enable'])).stdout, 'the webhook endpoint was not disabled\n');
    await waitUntil('the held event arrives', async () => {
      const events = parseArray(await cli(['--json', 'webhooks', 'list', '--downgrade', goneId]));
      return events.length > 0 && events.every((event) => event.status === 'delivered');
    });
    await Promise.all([stack.individual.cancel(workflowId), stack.individual.cancel(goneId)]);
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
    const revoked = await cli(['api-keys', 'revoke', String(created.id)]);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, `revoked ${String(created.id)}\n`);
    assert.equal(await keys.authenticate(key), undefined);
    assert.match(
      (await cli(['api-keys', 'list'])).stdout,
      new RegExp(`${String(created.id)}  billing  \\[.*\\]  created \\S+, revoked \\S+`),
    );
    assertFails(await cli(['api-keys', 'revoke', 'no-such-key']), 2, /no API key no-such-key/);
    assertFails(await cli(['api-keys', 'revoke', '0123456789abcdef']), 2, /no API key 0123456789abcdef/);
    assertFails(
      await cli(['api-keys', 'create', '--name', 'x', '--scopes', 'downgrades:delete']),
      2,
      /--scopes: downgrades:delete; scopes are/,
    );
    const admin = parse(await cli(['--json', 'api-keys', 'create', '--name', 'admin', '--scopes', 'all']));
    assert.equal((admin.scopes as string[]).length, API_SCOPES.length);

    // A key with keys:admin alone makes keys with no more than its own scopes.
    const keyAdmin = (await keys.create('key admin', ['keys:admin'])).key;
    assertFails(
      await cli(['api-keys', 'create', '--name', 'y', '--scopes', 'operators:read'], {
        CRONOFY_DOWNGRADE_API_KEY: keyAdmin,
      }),
      1,
      /this key cannot give scopes it lacks: operators:read/,
    );

    // A deployment's first key: made on its PostgreSQL, where there is no key yet to ask the API with.
    const noApi = { CRONOFY_DOWNGRADE_API_URL: 'http://127.0.0.1:9', CRONOFY_DOWNGRADE_API_KEY: undefined };
    const first = parse(
      await cli(['--json', 'api-keys', 'create', '--database', '--name', 'first', '--scopes', 'all'], {
        ...noApi,
        DATABASE_URL: scratch.url,
      }),
    );
    const firstKey = String(first.key);
    const byFirst = await cli(['api-keys', 'list'], { CRONOFY_DOWNGRADE_API_KEY: firstKey });
    assert.equal(byFirst.code, 0, byFirst.stderr);
    assert.match(
      byFirst.stdout,
      new RegExp(`^${String(first.id)}  first  \\[${API_SCOPES.join(' ')}\\]`, 'm'),
    );
    for (const DATABASE_URL of [undefined, 'file:.data/credentials']) {
      assertFails(
        await cli(['api-keys', 'create', '--database', '--name', 'x', '--scopes', 'all'], {
          ...noApi,
          DATABASE_URL,
        }),
        2,
        /--database opens the service database: set DATABASE_URL to the PostgreSQL the service uses/,
      );
    }
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
