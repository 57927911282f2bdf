/**
 * The HTTP API scaled out as a deployment runs it: two processes with SERVICE_ROLES=api on one PostgreSQL and one
 * Temporal, a third (SERVICE_ROLES=worker,callbacks) running the workflows, the simulator as Cronofy. An
 * Idempotency-Key and a key's rate limit hold across both API processes; 10,000 requests with missing, malformed,
 * revoked and wrong-scope keys start nothing, read no credentials and leave no key or token in either's log.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { API_KEY_PATTERN, generateApiKey } from '../src/contracts/apiKeyFormat.js';
import { API_SCOPES, ApiKeys, type ApiScope } from '../src/store/apiKeys.js';
import { openDatabase, type Database } from '../src/store/database.js';
import { Keyring } from '../src/store/encryption.js';
import { individualDowngradeId } from '../src/workflows/definitions.js';
import type { RunningSimulator } from '../simulator/server.js';
import { BUILT_MAIN, ensureBuilt } from '../harness/build.js';
import { IssuedSecrets } from '../harness/histories.js';
import { freePorts } from '../harness/ports.js';
import { createScratchDatabase, testPostgresUrl } from '../harness/postgres.js';
import {
  startServiceProcess,
  startServiceSurroundings,
  waitUntilAnswering,
  type ServiceProcess,
} from '../harness/serviceProcess.js';
import {
  CLIENT,
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  simulatorGet,
  STATE_SECRET,
  TEST_PAYLOAD_ENCRYPTION_KEYS,
} from '../harness/stack.js';
import { waitUntil } from '../harness/waitUntil.js';

const CREDENTIAL_KEYS = Keyring.generateSpec('apiprocs1');
const taskQueue = `api-processes-${Date.now()}`;
/** Both API processes' API_RATE_LIMIT_PER_MINUTE: above the 50 duplicates one key sends at once. */
const RATE_LIMIT_PER_MINUTE = 120;
const ABUSE_REQUESTS = 10_000;
const ABUSE_CONCURRENCY = 50;

let env: TestWorkflowEnvironment;
let simulator: RunningSimulator;
let callbackPort: number;
let scratch: Awaited<ReturnType<typeof createScratchDatabase>>;
let database: Database;
let keys: ApiKeys;
let worker: ServiceProcess | undefined;
let apis: ApiProcess[] = [];
/** Every API process spawned, ready or not: stopped after the tests whatever became of them. */
const spawnedApis: ApiProcess[] = [];
/** API_ADMIN_KEY of both processes, registered by each as it starts. */
const adminKey = generateApiKey();
/** A backend's key: every scope a downgrade's routes need. */
let writer: string;
/** Every key made for the test: none may appear in a log. */
const issuedKeys: string[] = [adminKey];
/** Every workflow the test started on purpose, by its id. */
const started = new Set<string>();

/** An API process and everything it wrote, stdout and stderr. */
interface ApiProcess {
  url: string;
  child: ChildProcess;
  output: string[];
  /** Resolves once the process has exited and its output is closed: then `output` is whole. */
  closed: Promise<number | string>;
}

/**
 * The compiled service (dist/src/main.js, as the image starts it) with SERVICE_ROLES=api on `port`, its output kept
 * (harness/serviceProcess.ts discards stdout).
 */
async function startApiProcess(port: number): Promise<ApiProcess> {
  await ensureBuilt();
  const child = spawn(process.execPath, [BUILT_MAIN], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_ENV: 'production',
      SERVICE_ROLES: 'api',
      // The level production runs at: a line for each request.
      LOG_LEVEL: 'info',
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      DATABASE_URL: scratch.url,
      CREDENTIAL_KEYS,
      PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS,
      CODEC_SERVER_TOKEN: 'api-process-codec-token-0123456789',
      STATE_SIGNING_SECRET: STATE_SECRET,
      CRONOFY_CLIENT_ID: CLIENT.clientId,
      CRONOFY_CLIENT_SECRET: CLIENT.clientSecret,
      CRONOFY_API_URL: simulator.url,
      CRONOFY_APP_URL: simulator.url,
      CALLBACK_HOST: '127.0.0.1',
      CALLBACK_PORT: String(callbackPort),
      METRICS_BIND_ADDRESS: 'off',
      API_HOST: '127.0.0.1',
      API_PORT: String(port),
      API_ADMIN_KEY: adminKey,
      API_RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT_PER_MINUTE),
    },
  });
  const output: string[] = [];
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => output.push(chunk));
  const closed = new Promise<number | string>((resolve) =>
    child.once('close', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const api = { url: `http://127.0.0.1:${port}`, child, output, closed };
  spawnedApis.push(api);
  await waitUntilAnswering(child, `${api.url}/healthz`, {
    detail: () => `\n${output.join('').slice(-2_000)}`,
  });
  return api;
}

async function stopApiProcess(api: ApiProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | string> {
  if (api.child.exitCode === null && api.child.signalCode === null) api.child.kill(signal);
  return api.closed;
}

before(async () => {
  ({ env, simulator, callbackPort } = await startServiceSurroundings({
    perSecond: 1_000,
    perMinute: 100_000,
  }));
  scratch = await createScratchDatabase(testPostgresUrl(), 'apiprocs');
  // Migrated here, before any process opens it.
  database = await openDatabase(scratch.url);
  keys = new ApiKeys(database);
  writer = (await createKey('backend', ['downgrades:write', 'downgrades:read', 'credentials:read'])).key;
  const ports = await freePorts(2);
  // Started together; each one that starts is kept for after() to stop, even when another fails.
  const [workerProcess, ...apiProcesses] = await Promise.allSettled([
    startServiceProcess({
      temporalAddress: env.address,
      taskQueue,
      databaseUrl: scratch.url,
      credentialKeys: CREDENTIAL_KEYS,
      simulatorUrl: simulator.url,
      callbackPort,
      env: { SERVICE_ROLES: 'worker,callbacks' },
    }),
    ...ports.map((port) => startApiProcess(port)),
  ]);
  if (workerProcess!.status === 'fulfilled') worker = workerProcess!.value;
  for (const settled of [workerProcess!, ...apiProcesses]) {
    if (settled.status === 'rejected') throw settled.reason;
  }
  apis = apiProcesses.map((settled) => (settled as PromiseFulfilledResult<ApiProcess>).value);
});

after(async () => {
  // Each step whatever became of the others (a database server gone, say), so that nothing is left running.
  const steps: Array<() => unknown> = [
    ...spawnedApis.map((api) => () => stopApiProcess(api, 'SIGKILL')),
    () => worker?.stop('SIGKILL'),
    () => database?.close(),
    () => scratch?.drop(),
    () => simulator?.close(),
    () => env?.teardown(),
  ];
  const failures: unknown[] = [];
  for (const step of steps)
    await Promise.resolve()
      .then(step)
      .catch((error: unknown) => failures.push(error));
  if (failures.length > 0) throw new AggregateError(failures, 'cleaning up after the tests failed');
});

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

async function send(
  api: ApiProcess,
  method: 'GET' | 'POST',
  path: string,
  options: { headers?: Record<string, string>; json?: unknown } = {},
): Promise<Answer> {
  const response = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      ...(options.json === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    },
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

function parsedOrNothing(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/** A new key on the processes' database, remembered among those looked for in the logs. */
async function createKey(name: string, scopes: readonly ApiScope[]) {
  const created = await keys.create(name, scopes);
  issuedKeys.push(created.key);
  return created;
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

/** The runs Temporal's visibility lists for a workflow id. */
async function listedRuns(workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const run of env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    runs.push(run.runId);
  }
  return runs;
}

async function historyEvents(workflowId: string) {
  return (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

/** A person's downgrade started through the API with `key`, waiting for them. */
async function startWaitingDowngrade(key: string, email: string) {
  const account = await createReadWriteUser({ simulator }, email);
  const answer = await send(apis[0]!, 'POST', '/v1/downgrades', {
    headers: bearer(key),
    json: { sub: account.sub, refreshToken: account.refresh_token },
  });
  assert.equal(answer.status, 201, answer.text);
  const { workflowId, authorizationUrl } = JSON.parse(answer.text) as {
    workflowId: string;
    authorizationUrl: string;
  };
  started.add(workflowId);
  return { account, workflowId, authorizationUrl };
}

test(
  '50 concurrent duplicate POSTs with one Idempotency-Key, split across two API processes: one workflow, one answer',
  { timeout: 120_000 },
  async () => {
    const account = await createReadWriteUser({ simulator }, 'duplicates@example.com');
    const body = { sub: account.sub, refreshToken: account.refresh_token, userId: 'duplicates' };
    const headers = { ...bearer(writer), 'idempotency-key': `start-${account.sub}` };
    const workflowId = individualDowngradeId(account.sub);
    started.add(workflowId);
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        send(apis[i % 2]!, 'POST', '/v1/downgrades', { headers, json: body }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    assert.deepEqual(new Set(statuses), new Set([201]), `statuses: ${statuses.join(' ')}`);
    const bodies = new Set(answers.map((answer) => answer.text));
    assert.equal(bodies.size, 1, `one answer, given to each: ${[...bodies].join('\n')}`);
    const replayed = answers.map((answer) => answer.headers.get('idempotent-replayed'));
    assert.equal(
      replayed.filter((value) => value === 'true').length,
      49,
      'all but one answered from the record',
    );
    assert.equal(replayed.filter((value) => value === null).length, 1, 'the first is not marked replayed');
    for (const answer of answers)
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json\b/);

    assert.equal((JSON.parse([...bodies][0]!) as { workflowId: string }).workflowId, workflowId);
    const { runId, status } = await env.client.workflow.getHandle(workflowId).describe();
    assert.equal(status.name, 'RUNNING');
    // Visibility takes in a run a moment after it starts: wait until it lists this one, then it lists no other.
    const runs = await waitUntil(`visibility lists ${workflowId}`, async () => {
      const listed = await listedRuns(workflowId);
      return listed.includes(runId) && listed;
    });
    assert.deepEqual(runs, [runId], 'one run of the person’s downgrade');
    assert.equal((await env.client.workflow.count(`WorkflowId = '${workflowId}'`)).count, 1);
    // Each start asks the run for its link with an update (update-with-start): one update, one start.
    const updates = (await historyEvents(workflowId)).filter(
      (event) => event.workflowExecutionUpdateAcceptedEventAttributes,
    );
    assert.equal(updates.length, 1, 'the start ran once');
  },
);

test(
  "a key's rate limit is one bucket across both processes: at least N and at most N plus its refill are accepted",
  { timeout: 120_000 },
  async () => {
    const N = RATE_LIMIT_PER_MINUTE;
    const key = (await createKey('busy dashboard', ['downgrades:read'])).key;
    // Two buckets, one a process, would accept 2N of these (N from each); one bucket accepts N and its refill.
    const requests = 2 * N + 20;
    const acceptedBy = [0, 0];
    const retryAfters = new Set<string>();
    const begun = performance.now();
    for (let i = 0; i < requests; i += 1) {
      const answer = await send(apis[i % 2]!, 'GET', '/v1/downgrades?limit=1', { headers: bearer(key) });
      if (answer.status === 200) {
        acceptedBy[i % 2]! += 1;
        continue;
      }
      assert.equal(answer.status, 429, answer.text);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal((JSON.parse(answer.text) as { code: string }).code, 'rate_limited');
      const retryAfter = answer.headers.get('retry-after');
      assert.ok(retryAfter !== null, 'a 429 says when to retry');
      retryAfters.add(retryAfter);
    }
    const elapsedMs = performance.now() - begun;
    const accepted = acceptedBy[0]! + acceptedBy[1]!;
    // The bucket holds N at first and refills at N a minute: between the first request and the last it can have
    // handed out no more than N and what it refilled in the elapsed time (measured around all of them).
    const bound = N + Math.floor((elapsedMs / 60_000) * N);
    const detail = `accepted ${accepted} (${acceptedBy.join(' + ')}) of ${requests} in ${Math.round(elapsedMs)} ms; bound ${bound}`;
    assert.ok(accepted >= N, `the first N find a request in the bucket: ${detail}`);
    assert.ok(accepted <= bound, `one bucket for both processes: ${detail}`);
    assert.ok(bound < 2 * N, `fewer than two buckets would accept: ${detail}`);
    // Sent alternately, the first N (all accepted) were half each process's.
    assert.ok(
      acceptedBy.every((count) => count >= N / 2),
      `both processes spent the bucket: ${detail}`,
    );
    // Less than one request in the bucket, refilled at N a minute: at most 60/N seconds to wait.
    for (const value of retryAfters) {
      assert.match(value, /^[1-9][0-9]*$/);
      assert.ok(Number(value) <= Math.ceil(60 / N), `Retry-After ${value}`);
    }
    assert.ok(retryAfters.size > 0, `some were refused: ${detail}`);
    console.log(`rate limit across two processes: ${detail}`);
  },
);

/** A credential presented to the API, what of it is secret, and the answer it must get. */
interface Presented {
  label: string;
  headers: Record<string, string>;
  secrets: string[];
  status: 401 | 403;
}

const randomText = (length: number) => randomBytes(length).toString('base64url').slice(0, length);
const randomHex = (length: number) => randomBytes(length).toString('hex').slice(0, length);

/** `text` with the character at `index` replaced by another of the same alphabet. */
function changedAt(text: string, index: number, alphabet: string): string {
  const current = text[index]!;
  const replacement = alphabet[(alphabet.indexOf(current) + 1 + (index % 5)) % alphabet.length]!;
  assert.notEqual(replacement, current);
  return `${text.slice(0, index)}${replacement}${text.slice(index + 1)}`;
}

const HEX = '0123456789abcdef';
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Every credential refused with 401, whatever the route: none, malformed, never issued, altered, revoked. */
function unauthenticatedCredentials(revoked: string): Presented[] {
  const [, id, secret] = API_KEY_PATTERN.exec(writer)!;
  const presented: Presented[] = [
    { label: 'no Authorization', headers: {}, secrets: [], status: 401 },
    { label: 'the key in another header', headers: { 'x-api-key': writer }, secrets: [], status: 401 },
    { label: 'the key without a scheme', headers: { authorization: writer }, secrets: [], status: 401 },
    { label: 'the key and more', headers: bearer(`${writer}x`), secrets: [`${writer}x`], status: 401 },
    { label: 'the key cut short', headers: bearer(writer.slice(0, -1)), secrets: [], status: 401 },
    {
      label: 'two keys',
      headers: { authorization: `Bearer ${revoked} ${writer}` },
      secrets: [],
      status: 401,
    },
    { label: 'revoked', headers: bearer(revoked), secrets: [], status: 401 },
    {
      label: 'revoked, lower case',
      headers: { authorization: `bearer ${revoked}` },
      secrets: [],
      status: 401,
    },
  ];
  for (let i = 0; i < 6; i += 1) {
    const text = randomText(24 + i * 4);
    presented.push({ label: 'random bearer', headers: bearer(text), secrets: [text], status: 401 });
    const bare = randomText(40);
    presented.push({
      label: 'random, no scheme',
      headers: { authorization: bare },
      secrets: [bare],
      status: 401,
    });
  }
  const shapes = [
    () => `cdk_${randomHex(16)}_${randomText(42)}`,
    () => `cdk_${randomHex(16)}_${randomText(44)}`,
    () => `cdk_${randomHex(15)}_${randomText(43)}`,
    () => `cdk_${randomHex(17)}_${randomText(43)}`,
    () => `cdk_${randomHex(16)}_`,
    () => `cdk_${randomText(16)}_${randomText(43)}`,
    // The right shape, never issued: its id finds no row.
    () => `cdk_${randomHex(16)}_${randomText(43)}`,
    // An issued key's id with another secret.
    () => `cdk_${id}_${randomText(43)}`,
  ];
  for (const shape of shapes) {
    for (let i = 0; i < 2; i += 1) {
      const key = shape();
      const parts = /^cdk_[^_]*_(.*)$/.exec(key)!;
      presented.push({
        label: 'malformed cdk_',
        headers: bearer(key),
        secrets: [key, ...(parts[1]!.length >= 16 ? [parts[1]!] : [])],
        status: 401,
      });
    }
  }
  // The writer's key with one character changed, in its id or in its secret.
  for (const index of [0, 9, 15]) {
    const key = `cdk_${changedAt(id!, index, HEX)}_${secret}`;
    presented.push({
      label: 'one character of the id changed',
      headers: bearer(key),
      secrets: [key],
      status: 401,
    });
  }
  for (const index of [0, 10, 21, 33, 42]) {
    const changed = changedAt(secret!, index, BASE64URL);
    const key = `cdk_${id}_${changed}`;
    presented.push({
      label: 'one character of the secret changed',
      headers: bearer(key),
      secrets: [key, changed],
      status: 401,
    });
  }
  for (const credentials of [`backend:${writer}`, `${id}:${secret}`, `${writer}:`]) {
    const encoded = Buffer.from(credentials).toString('base64');
    presented.push({
      label: 'Basic',
      headers: { authorization: `Basic ${encoded}` },
      secrets: [encoded],
      status: 401,
    });
  }
  return presented;
}

test(
  'abuse: 10,000 requests with missing, malformed, revoked and wrong-scope keys start nothing, read no credentials, log no secret',
  { timeout: 180_000 },
  async () => {
    // A downgrade that completed, with new credentials to read; one that waits for its person. Their own key: the
    // writer's budget is not spent by waiting.
    const setupKey = (await createKey('setup', ['downgrades:write', 'downgrades:read', 'credentials:read']))
      .key;
    const completed = await startWaitingDowngrade(setupKey, 'completed@example.com');
    const location = await decideOnConsentPage(completed.authorizationUrl, 'free_busy_google', {
      email: completed.account.email,
    });
    assert.equal((await followRedirect(location)).status, 303);
    // Polled at twice a second: the key's bucket refills faster than that (N a minute), so it never runs dry.
    await waitUntil(
      'the downgrade completes',
      async () => {
        const answer = await send(apis[1]!, 'GET', `/v1/downgrades/${completed.workflowId}`, {
          headers: bearer(setupKey),
        });
        return (JSON.parse(answer.text) as { state?: string }).state === 'completed';
      },
      { intervalMs: 500 },
    );
    const credentialsPath = `/v1/downgrades/${completed.workflowId}/credentials`;
    const credentialsAnswer = await send(apis[0]!, 'GET', credentialsPath, { headers: bearer(setupKey) });
    assert.equal(credentialsAnswer.status, 200, credentialsAnswer.text);
    const credentials = JSON.parse(credentialsAnswer.text) as { accessToken: string; refreshToken?: string };
    const newTokens = [credentials.accessToken, credentials.refreshToken].filter(
      (token) => token !== undefined,
    );
    assert.ok(newTokens.every((token) => token.length >= 16));
    const waiting = await startWaitingDowngrade(setupKey, 'waiting@example.com');
    const completedRunId = (await env.client.workflow.getHandle(completed.workflowId).describe()).runId;
    const untouched = await createReadWriteUser({ simulator }, 'untouched@example.com');

    // Keys a backend might hold: revoked, or without the scope a route needs.
    const revokedKey = await createKey('old backend', API_SCOPES);
    await keys.revoke(revokedKey.id);
    const scoped: Array<{ key: string; scopes: readonly ApiScope[] }> = [];
    for (const scopes of [
      ['downgrades:read'],
      ['downgrades:write'],
      ['credentials:read'],
      ['operators:approve', 'webhooks:admin', 'keys:admin'],
    ] as const) {
      scoped.push({ key: (await createKey(`only ${scopes.join(' ')}`, scopes)).key, scopes });
    }
    const refused = unauthenticatedCredentials(revokedKey.key);
    const withoutScope = (scope: ApiScope): Presented[] =>
      scoped
        .filter((holder) => !holder.scopes.includes(scope))
        .map((holder) => ({
          label: `without ${scope}`,
          headers: bearer(holder.key),
          secrets: [],
          status: 403 as const,
        }));

    const subs = [
      ...Array.from({ length: 8 }, (_, i) => `acc_abuse${i}`),
      untouched.sub,
      completed.account.sub,
      waiting.account.sub,
    ];
    const routes = [
      {
        name: 'start',
        method: 'POST' as const,
        path: () => '/v1/downgrades',
        json: (i: number) => ({ sub: subs[i % subs.length]!, refreshToken: untouched.refresh_token }),
        presented: [...refused, ...withoutScope('downgrades:write')],
      },
      {
        name: 'credentials',
        method: 'GET' as const,
        path: () => credentialsPath,
        json: () => undefined,
        presented: [...refused, ...withoutScope('credentials:read')],
      },
      {
        name: 'cancel',
        method: 'POST' as const,
        path: () => `/v1/downgrades/${waiting.workflowId}/cancel`,
        json: () => undefined,
        presented: [...refused, ...withoutScope('downgrades:write')],
      },
      {
        name: 'list',
        method: 'GET' as const,
        path: () => '/v1/downgrades?limit=100',
        json: () => undefined,
        presented: [...refused, ...withoutScope('downgrades:read')],
      },
    ];
    // Every route with every credential on each process, in turn, until there are 10,000.
    const combinations = routes.flatMap((route) =>
      route.presented.flatMap((presented) => apis.map((api) => ({ route, presented, api }))),
    );

    // Temporal holds the runs started on purpose (visibility catches up with them first).
    const countBefore = await waitUntil('visibility counts the downgrades started', async () => {
      const { count } = await env.client.workflow.count();
      return count === started.size && count;
    });

    const tally = new Map<string, number>();
    const wrong: string[] = [];
    let credentialBodies = 0;
    let next = 0;
    const begun = performance.now();
    await Promise.all(
      Array.from({ length: ABUSE_CONCURRENCY }, async () => {
        for (let i = next++; i < ABUSE_REQUESTS; i = next++) {
          const { route, presented, api } = combinations[i % combinations.length]!;
          const idempotency: Record<string, string> =
            i % 3 === 0 && route.method === 'POST' ? { 'idempotency-key': `abuse-${i}` } : {};
          const answer = await send(api, route.method, route.path(), {
            headers: { ...presented.headers, ...idempotency },
            json: route.json(i),
          });
          const tallied = `${route.name} ${answer.status}`;
          tally.set(tallied, (tally.get(tallied) ?? 0) + 1);
          if (newTokens.some((token) => answer.text.includes(token))) credentialBodies += 1;
          const problem = parsedOrNothing(answer.text) as { code?: string; status?: number };
          const expected = presented.status === 401 ? 'unauthenticated' : 'insufficient_scope';
          const fine =
            answer.status === presented.status &&
            /^application\/problem\+json/.test(answer.headers.get('content-type') ?? '') &&
            problem.code === expected &&
            problem.status === presented.status &&
            (presented.status === 403 || answer.headers.get('www-authenticate') === 'Bearer');
          if (!fine && wrong.length < 10) {
            wrong.push(
              `${route.method} ${route.path()} (${presented.label}: ${JSON.stringify(presented.headers)}) -> ` +
                `${answer.status} www-authenticate=${answer.headers.get('www-authenticate')} ${answer.text}`,
            );
          }
        }
      }),
    );
    const abuseMs = performance.now() - begun;
    const statuses = [...tally].sort().map(([answer, count]) => `${answer}: ${count}`);
    console.log(
      `abuse: ${ABUSE_REQUESTS} requests (${combinations.length} route × credential × process combinations) ` +
        `in ${Math.round(abuseMs)} ms: ${statuses.join(', ')}`,
    );
    assert.deepEqual(wrong, [], 'each refused with its 401 (WWW-Authenticate: Bearer) or 403 problem');
    assert.equal(
      [...tally.values()].reduce((sum, count) => sum + count, 0),
      ABUSE_REQUESTS,
    );
    assert.equal(tally.get('credentials 200'), undefined, 'no credentials read');
    assert.equal(credentialBodies, 0, 'no answer holds a new token');

    // Nothing started: no run of any person named in a start, the completed one not started again.
    for (const sub of subs.slice(0, 9)) {
      await assert.rejects(
        env.client.workflow.getHandle(individualDowngradeId(sub)).describe(),
        WorkflowNotFoundError,
        sub,
      );
    }
    const completedNow = await env.client.workflow.getHandle(completed.workflowId).describe();
    assert.equal(completedNow.runId, completedRunId, 'the completed downgrade was not started again');
    assert.equal(completedNow.status.name, 'COMPLETED');
    // Nothing cancelled: the waiting downgrade was never asked to cancel, and waits still.
    const waitingEvents = await historyEvents(waiting.workflowId);
    assert.equal(
      waitingEvents.filter((event) => event.workflowExecutionCancelRequestedEventAttributes).length,
      0,
      'no cancellation requested',
    );
    const waitingNow = await send(apis[0]!, 'GET', `/v1/downgrades/${waiting.workflowId}`, {
      headers: bearer(setupKey),
    });
    assert.equal((JSON.parse(waitingNow.text) as { state: string }).state, 'awaiting_reauthorization');
    assert.equal((await env.client.workflow.count()).count, countBefore, 'no new workflow in Temporal');

    // Both API processes' logs, whole once they have exited.
    assert.deepEqual(await Promise.all(apis.map((api) => stopApiProcess(api))), [0, 0]);
    const logs = apis.map((api) => api.output.join(''));
    const requestLines = logs.map((log) =>
      log.split('\n').filter((line) => line.includes('"request completed"')),
    );
    assert.ok(
      requestLines.every((lines) => lines.length >= ABUSE_REQUESTS / 2),
      `each process logged its requests: ${requestLines.map((lines) => lines.length).join(', ')}`,
    );
    const issued = await simulatorGet({ simulator }, '/_sim/issued-secrets', IssuedSecrets);
    // The scan finds what the requests did log: each refused cancel's path, the workflow's id in it.
    const cancelPath = `"path":"/v1/downgrades/${waiting.workflowId}/cancel"`;
    assert.ok(
      logs.every((log) => log.includes(cancelPath)),
      'the logs name the paths requested',
    );
    const secrets = new Set([
      ...issuedKeys,
      ...issuedKeys.map((key) => API_KEY_PATTERN.exec(key)![2]!),
      ...routes.flatMap((route) => route.presented.flatMap((presented) => presented.secrets)),
      ...issued.codes,
      ...issued.access_tokens,
      ...issued.refresh_tokens,
      ...newTokens,
    ]);
    assert.ok(issued.access_tokens.length > 0 && issued.refresh_tokens.length > 0);
    const scanned = performance.now();
    const leaks = [...secrets].filter((secret) => logs.some((log) => log.includes(secret)));
    console.log(
      `logs: ${logs.map((log) => `${Math.round(log.length / 1024)} KiB`).join(' + ')}, ` +
        `${secrets.size} secrets looked for in ${Math.round(performance.now() - scanned)} ms`,
    );
    assert.deepEqual(leaks, [], 'no key, secret or token in either API process’s log');
  },
);
