/**
 * Every CLI command against `npm start` with nothing else configured: the service (src/main.ts) on its embedded
 * defaults — its own Temporal dev server, PGlite, the Cronofy simulator, the admin key it generates into
 * .data/local-secrets.json — in a directory of its own, on free ports set through its port variables only. The CLI
 * is told where the API is and nothing else: it finds the key in that directory's .data/, as it does where an
 * operator runs `npm start`. Each command exits 0 and its output shows it did its job; `webhooks enable`, which
 * has no endpoint to enable without APP_WEBHOOK_URL, says so.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import got from 'got';
import { z } from 'zod';
import { freePorts } from '../harness/ports.js';
import { waitUntilAnswering } from '../harness/serviceProcess.js';
import { decideOnConsentPage, followRedirect } from '../harness/stack.js';
import { waitUntil } from '../harness/waitUntil.js';
import { main } from '../src/cli.js';
import { SIMULATOR_CLIENT } from '../src/services.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MAIN = join(ROOT, 'src', 'main.ts');

let scratch: string;
let service: ChildProcess | undefined;
let apiUrl: string;
let simulatorUrl: string;

/** The service's output, for a failure's message. */
const serviceLog = () => {
  try {
    return `\nthe service's log:\n${readFileSync(join(scratch, 'service.log'), 'utf8').split('\n').slice(-60).join('\n')}`;
  } catch {
    return '';
  }
};

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cli-npm-start-'));
  const [temporal, ui, simulator, callbacks, codec, api, metrics] = await freePorts(7);
  apiUrl = `http://127.0.0.1:${api}`;
  simulatorUrl = `http://127.0.0.1:${simulator}`;
  // `tsx src/main.ts`, as `npm start` runs it, in a directory of its own: its .data/ is the scratch folder's. Only
  // the ports are set (and what finds programs and the project's tsconfig): every other variable is the default.
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME ?? scratch,
    TMPDIR: process.env.TMPDIR ?? tmpdir(),
    TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json'),
    TEMPORAL_DEV_SERVER_PORT: String(temporal),
    TEMPORAL_UI_PORT: String(ui),
    SIMULATOR_PORT: String(simulator),
    CALLBACK_PORT: String(callbacks),
    CODEC_SERVER_PORT: String(codec),
    API_PORT: String(api),
    METRICS_BIND_ADDRESS: `127.0.0.1:${metrics}`,
  };
  const log = openSync(join(scratch, 'service.log'), 'w');
  try {
    service = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN], {
      cwd: scratch,
      env,
      stdio: ['ignore', log, log],
    });
  } finally {
    closeSync(log);
  }
  await waitUntilAnswering(service, `${apiUrl}/healthz`, { detail: serviceLog });
});

after(async () => {
  const child = service;
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A command as an operator runs it next to `npm start`: in its directory (whose .data/ holds the admin key), told
 * only where the API listens (its port is not the default 8090 here).
 */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const run = { code: 0, stdout: '', stderr: '' };
  run.code = await main(['node', 'cronofy-downgrade', ...args], {
    env: { CRONOFY_DOWNGRADE_API_URL: apiUrl, ...env },
    cwd: scratch,
    out: (text) => void (run.stdout += text),
    err: (text) => void (run.stderr += text),
  });
  return run;
}

/** Runs a command that must succeed; answers its standard output. */
async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const run = await cli(args, env);
  assert.equal(run.code, 0, `cronofy-downgrade ${args.join(' ')}: ${run.stderr}${serviceLog()}`);
  assert.equal(run.stderr, '');
  return run.stdout;
}

async function file(name: string, lines: string[]): Promise<string> {
  const path = join(scratch, name);
  await writeFile(path, lines.join('\n') + '\n');
  return path;
}

const outcomes = (script: object) => got.put(`${simulatorUrl}/_sim/enterprise/outcomes`, { json: script });

/** A domain connected Read/Write on the service's own simulator; its service account's refresh token. */
async function createDomain(domain: string, emails: string[]): Promise<string> {
  const created = await got
    .post(`${simulatorUrl}/_sim/enterprise/domains`, {
      json: { domain, client_id: SIMULATOR_CLIENT.clientId, users: emails },
    })
    .json();
  return z.object({ refresh_token: z.string() }).parse(created).refresh_token;
}

/** The administrator's consent, through the link `status` shows while the run waits for it. */
async function consentAsAdministrator(domain: string): Promise<void> {
  const link = await waitUntil(`${domain} shows its administrator's link`, async () => {
    const run = await cli(['status', '--domain', domain]);
    assert.equal(run.code, 0, run.stderr);
    return /^administrator's consent link: (\S+)$/m.exec(run.stdout)?.[1];
  });
  const location = await decideOnConsentPage(link, 'free_busy_google', { domain });
  assert.equal((await followRedirect(location)).status, 303);
}

async function waitForPhase(target: string[], phase: string): Promise<void> {
  await waitUntil(`${target.join(' ')} reaches ${phase}`, async () => {
    const status = z
      .object({ phase: z.string() })
      .loose()
      .parse(JSON.parse(await ok(['--json', 'status', ...target])));
    return status.phase === phase;
  });
}

const previewIdOf = (text: string) => /^preview (pv_\S+) of /.exec(text)?.[1] ?? assert.fail(text);

describe('every CLI command against `npm start` with nothing else configured', () => {
  const domain = 'npm-start.example.org';
  const emails = Array.from({ length: 10 }, (_, i) => `user${i}@${domain}`);
  const refused = [emails[3]!, emails[7]!];
  const domainRun = `downgrade-enterprise-${domain}`;

  test('preview, start, status, approve, status --watch, report and retry-failed take a domain to Free/Busy', async () => {
    const token = await createDomain(domain, emails);
    await outcomes({
      byEmail: Object.fromEntries(
        refused.map((email) => [email, { kind: 'error', error: 'unable_to_grant_scope' }]),
      ),
    });
    const users = await file('users.csv', ['# the domain, exported', ...emails, emails[0]!, 'not-an-email']);
    const preview = await ok(['preview', '--domain', domain, '--users', users], {
      SERVICE_ACCOUNT_REFRESH_TOKEN: token,
    });
    assert.match(
      preview,
      /^preview pv_\S+ of npm-start\.example\.org\nusers: 10 \(1 duplicates and 1 malformed dropped\)\nservice account: google \(service_account\/accounts\/manage, delegated read_write\)\nCronofy calls: \d+, about \d+ s at 8\/s\n/,
    );
    assert.equal(preview.includes(token), false, 'the refresh token is never printed');
    const previewId = previewIdOf(preview);

    assert.equal(
      await ok(['start', '--domain', domain, '--preview', previewId]),
      `started ${domain} (${domainRun}); approve preview ${previewId}\n`,
    );
    await waitForPhase(['--domain', domain], 'awaiting_approval');
    const waiting = await ok(['status', '--domain', domain]);
    assert.match(
      waiting,
      /^npm-start\.example\.org: awaiting_approval \(run 1\)\nusers: 0 of 10 started, 0 in flight\n/,
    );
    assert.match(waiting, new RegExp(`^awaiting approval of preview ${previewId} until \\S+$`, 'm'));

    const approved = await ok([
      'approve',
      '--domain',
      domain,
      '--preview',
      previewId,
      '--by',
      'ops@example.com',
    ]);
    assert.match(
      approved,
      new RegExp(`^decided by ops@example\\.com at \\S+ \\(preview ${previewId}\\)$`, 'm'),
    );
    await consentAsAdministrator(domain);

    const watched = await ok(['status', '--domain', domain, '--watch']);
    const bars = watched.split('\n').filter((line) => line.startsWith('['));
    assert.equal(bars.at(-1), '[##############################] 10/10 · completed · completed 8, failed 2');
    assert.match(
      watched,
      /\nnpm-start\.example\.org: completed \(run 1\)\nusers: 10 of 10 started, 0 in flight; completed 8, failed 2\n/,
    );
    console.log(`status --watch against npm start:\n${watched}`);

    const csv = (await ok(['report', '--domain', domain])).trim().split('\n');
    assert.equal(csv[0], 'position,email,state,reason,provider_name,recorded_at');
    assert.deepEqual(
      csv.slice(1).map((line) => line.split(',').slice(0, 5).join(',')),
      emails.map((email, i) =>
        refused.includes(email)
          ? `${i},${email},failed,unable_to_grant_scope,`
          : `${i},${email},completed,,google_free_busy`,
      ),
    );
    const out = join(scratch, 'report.json');
    assert.equal(await ok(['report', '--domain', domain, '--format', 'json', '--out', out]), '');
    const rows = z
      .array(z.object({ position: z.int(), email: z.string(), state: z.string() }).loose())
      .parse(JSON.parse(await readFile(out, 'utf8')));
    assert.deepEqual(
      rows.map((row) => `${row.position} ${row.email} ${row.state}`),
      emails.map((email, i) => `${i} ${email} ${refused.includes(email) ? 'failed' : 'completed'}`),
    );
    const json = z
      .array(z.unknown())
      .parse(JSON.parse(await ok(['report', '--domain', domain, '--format', 'json'])));
    assert.equal(json.length, 10);

    // The two refused, asked again now that Cronofy grants them, with the service account already verified.
    await outcomes({});
    assert.equal(await ok(['retry-failed', '--domain', domain]), `started ${domainRun} for 2 users\n`);
    const retried = await ok(['status', '--domain', domain, '--watch']);
    assert.match(
      retried,
      /\nnpm-start\.example\.org: completed \(run \d+\)\nusers: 2 of 2 started, 0 in flight; completed 2\n/,
    );
  });

  test('pause, resume and cancel a domain whose users take their time', async () => {
    const other = 'npm-start-ops.example.org';
    const users = Array.from({ length: 20 }, (_, i) => `user${i}@${other}`);
    const token = await createDomain(other, users);
    // No user ever answers: the domain stays in its users phase until it is cancelled.
    await outcomes({ default: { kind: 'no_callback' } });
    try {
      const preview = await ok(['preview', '--domain', other, '--users', await file('ops.txt', users)], {
        SERVICE_ACCOUNT_REFRESH_TOKEN: token,
      });
      const previewId = previewIdOf(preview);
      await ok(['start', '--domain', other, '--preview', previewId]);
      await waitForPhase(['--domain', other], 'awaiting_approval');
      await ok(['approve', '--domain', other, '--preview', previewId, '--by', 'ops']);
      await consentAsAdministrator(other);
      await waitForPhase(['--domain', other], 'moving_users');

      const paused = await ok([
        'pause',
        '--domain',
        other,
        '--by',
        'ops',
        '--reason',
        'a call with the customer',
      ]);
      assert.match(paused, /^npm-start-ops\.example\.org: paused \(run 1\)\n/);
      assert.match(paused, /^paused by ops at \S+: a call with the customer$/m);
      const resumed = await ok(['resume', '--domain', other, '--by', 'ops']);
      assert.match(resumed, /^npm-start-ops\.example\.org: moving_users \(run 1\)\n/);
      assert.doesNotMatch(resumed, /paused by/);
      const cancelled = await ok(['cancel', '--domain', other]);
      assert.match(cancelled, /^npm-start-ops\.example\.org: cancelled \(run 1\)\n/);
    } finally {
      await outcomes({});
    }
  });

  test('a campaign: preview, start, status, reject', async () => {
    const people = await Promise.all(
      Array.from({ length: 3 }, async (_, i) => {
        const account = await got
          .post(`${simulatorUrl}/_sim/accounts`, {
            json: { email: `camper${i}@npm-start.example.com`, client_id: SIMULATOR_CLIENT.clientId },
          })
          .json();
        return z.object({ sub: z.string(), email: z.string() }).parse(account);
      }),
    );
    const users = await file(
      'campaign.csv',
      people.map((person, i) => `${person.sub},u${i},${person.email}`),
    );
    const preview = await ok(['preview', '--campaign', 'spring', '--users', users]);
    assert.match(
      preview,
      /^preview pv_\S+ of campaign spring\nusers: 3 \(0 duplicates and 0 malformed dropped\)\n/,
    );
    const previewId = previewIdOf(preview);
    assert.match(
      await ok(['start', '--campaign', 'spring', '--preview', previewId]),
      /^started campaign spring \(downgrade-campaign-spring\)/,
    );
    await waitForPhase(['--campaign', 'spring'], 'awaiting_approval');
    assert.match(
      await ok(['status', '--campaign', 'spring']),
      /^campaign spring: awaiting_approval \(run 1\)\nusers: 0 of 3 started/,
    );
    const rejected = await ok([
      'reject',
      '--campaign',
      'spring',
      '--by',
      'security',
      '--reason',
      'not this quarter',
    ]);
    assert.match(rejected, /^campaign spring: rejected \(run 1\)\n/);
    const report = (await ok(['report', '--campaign', 'spring'])).trim().split('\n');
    assert.equal(report[0], 'position,sub,user_id,state,reason,provider_name,recorded_at');
    assert.equal(report.length, 4);
  });

  test('webhooks: status, list, redeliver; enable says there is no endpoint to enable', async () => {
    // Nothing configured: no webhook, no email, so no events are recorded.
    assert.equal(
      await ok(['webhooks', 'status']),
      'webhook endpoint: not configured\nundelivered: 0 pending, 0 failed\n',
    );
    assert.equal(await ok(['webhooks', 'list']), 'no events\n');
    assert.equal(await ok(['webhooks', 'list', '--failed']), 'no events\n');
    assert.equal(await ok(['webhooks', 'list', '--downgrade', domainRun]), 'no events\n');
    assert.equal(await ok(['webhooks', 'redeliver']), '0 failed events queued for delivery again\n');
    const enable = await cli(['webhooks', 'enable']);
    assert.equal(enable.code, 2, enable.stderr);
    assert.equal(enable.stderr, 'error: No webhook endpoint is configured (APP_WEBHOOK_URL)\n');
  });

  test('api-keys: create, list and revoke, through the API with the admin key npm start keeps', async () => {
    const created = await ok(['api-keys', 'create', '--name', 'dashboard', '--scopes', 'operators:read']);
    const [line, key, note] = created.trim().split('\n');
    assert.match(line!, /^[0-9a-f]{16} {2}dashboard {2}\[operators:read\] {2}created \S+$/);
    assert.match(key!, /^cdk_[0-9a-f]{16}_\S{43}$/);
    assert.equal(note, '(shown once: keep it now)');
    const id = line!.split(' ')[0]!;
    const listed = await ok(['api-keys', 'list']);
    assert.match(listed, /^[0-9a-f]{16} {2}admin \(API_ADMIN_KEY\) {2}\[[^\]]*keys:admin[^\]]*\]/m);
    assert.match(listed, new RegExp(`^${id} {2}dashboard {2}\\[operators:read\\] {2}created \\S+$`, 'm'));
    assert.equal(listed.includes(key!), false);

    // The new key reads runs, and nothing else.
    const asDashboard = { CRONOFY_DOWNGRADE_API_KEY: key! };
    assert.match(
      await ok(['status', '--domain', domain], asDashboard),
      /^npm-start\.example\.org: completed/,
    );
    const refused = await cli(['api-keys', 'list'], asDashboard);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /this needs an API key with the scope keys:admin/);

    assert.equal(await ok(['api-keys', 'revoke', id]), `revoked ${id}\n`);
    assert.match(await ok(['api-keys', 'list']), new RegExp(`^${id} {2}dashboard .*, revoked \\S+$`, 'm'));
    const revoked = await cli(['status', '--domain', domain], asDashboard);
    assert.equal(revoked.code, 1);
    assert.match(revoked.stderr, /the service refused the API key \(unauthenticated\)/);
    assert.equal(revoked.stderr.includes(key!), false);
  });
});
