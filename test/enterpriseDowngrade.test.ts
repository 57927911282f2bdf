import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { defaultPayloadConverter } from '@temporalio/common';
import got from 'got';
import { z } from 'zod';
import { parse as parseCsv } from 'csv-parse/sync';
import { StateSigner } from '../src/contracts/stateToken.js';
import { NO_RUN } from '../harness/stack.js';
import { reportCsv } from '../src/reportCsv.js';
import { SERVICE_ACCOUNT_CALLBACK_PATH } from '../src/contracts/callbackPaths.js';
import { enterpriseDowngradeId, enterpriseUserDowngradeId } from '../src/workflows/enterpriseDefinitions.js';
import {
  approveAsAdministrator,
  createDomain,
  simulatorGet,
  startStack,
  stateClaims,
  STATE_SECRET,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { assertEveryHistoryHoldsNoSecrets, assertHistoryHoldsNoSecrets } from '../harness/histories.js';
import { waitUntil } from '../harness/waitUntil.js';

/** The server refuses a 51st pending child: the sliding window (40) must keep every run below it. */
const PENDING_CHILDREN_LIMIT = 50;

const EnterpriseSummary = z
  .object({
    users: z
      .object({
        total: z.number(),
        active: z.number(),
        by_provider: z.record(z.string(), z.object({ active: z.number() })),
      })
      .loose(),
  })
  .loose();
const RequestLog = z.array(z.object({ endpoint: z.string().optional(), status: z.number() }));

let stack: Stack;
const domainEmails = (domain: string, users: number) =>
  Array.from({ length: users }, (_, i) => `user${i}@${domain}`);
let worker: RunningWorker;

before(async () => {
  stack = await startStack({
    extraServerArgs: [
      '--dynamic-config-value',
      `limit.numPendingChildExecutions.error=${PENDING_CHILDREN_LIMIT}`,
    ],
    // Longer than the 3-second service-account token of the 150-user domain: its token is refreshed before each use.
    serviceAccountRefreshMarginMs: 5_000,
    // Temporal's limiter lets a second's worth through in a burst: half of Cronofy's 50/s leaves room for it.
    cronofyCallsPerSecond: 25,
  });
  worker = await stack.startWorker();
});

after(async () => {
  await worker?.stop();
  await stack?.stop();
});

const sim = (path: string) => `${stack.simulator.url}${path}`;

const AccessRequestUser = z.object({
  email: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  firstRunId: z.string(),
  request: z.number(),
});
const UserAccessInput = z.union([
  z.object({ users: z.array(AccessRequestUser) }),
  z.object({
    batch: z.object({
      parentWorkflowId: z.string(),
      captureId: z.string(),
      from: z.number(),
      runIds: z.array(z.string()),
    }),
  }),
]);

/**
 * The users of every requestUserAccess activity a workflow scheduled, read from its history and decoded: a user's
 * own request names it; a domain's names its batch, whose users are known by their positions and run ids.
 */
async function userAccessRequests(workflowId: string) {
  const users = [];
  for (const input of await accessRequestInputs(workflowId)) {
    if ('users' in input) {
      users.push(
        ...input.users.map(({ workflowId, runId, firstRunId, request }) => ({
          workflowId,
          runId,
          firstRunId,
          request,
        })),
      );
      continue;
    }
    const { parentWorkflowId, captureId, from, runIds } = input.batch;
    users.push(
      ...runIds.map((runId, index) => ({
        workflowId: enterpriseUserDowngradeId(parentWorkflowId, captureId, from + index),
        runId,
        firstRunId: runId,
        request: 1,
      })),
    );
  }
  return users;
}

describe('a 150-user domain with mixed outcomes, 5xx and 429 bursts and a 3-second service-account token', () => {
  const domain = 'big.example.org';
  const emails = domainEmails(domain, 150);
  const refused = emails.filter((_, i) => i % 50 === 3 || i % 50 === 13); // 6 users
  const duplicated = emails.filter((_, i) => i % 50 === 7); // 3 users
  const late = emails.filter((_, i) => i % 50 === 9); // 3 users
  const granted = emails.length - refused.length;
  let result: Awaited<ReturnType<Stack['enterprise']['waitForResult']>>;

  // One run of the domain, which every test below reads; the retry, which changes it, comes last.
  before(async () => {
    const byEmail = Object.fromEntries([
      ...refused.map((email) => [email, { kind: 'error', error: 'unable_to_grant_scope' }]),
      ...duplicated.map((email) => [email, { kind: 'duplicate' }]),
      ...late.map((email) => [email, { kind: 'late', delayMs: 1_500 }]),
    ]);
    const serviceAccount = await createDomain(stack, domain, emails);
    await got.put(sim('/_sim/enterprise/outcomes'), { json: { byEmail } });
    await got.put(sim('/_sim/enterprise/settings'), { json: { serviceAccountTokenTtlSeconds: 3 } });
    // Cronofy's 50/s stays; the per-minute limit is lifted so the test takes seconds, not minutes.
    await got.put(sim('/_sim/rate-limit'), { json: { perSecond: 50, perMinute: 100_000 } });
    await got.post(sim('/_sim/faults'), {
      json: [
        { endpoint: 'service_account_authorizations', status: 503, count: 3 },
        { endpoint: 'service_account_authorizations', status: 429, retryAfterSeconds: 1, count: 2 },
        { endpoint: 'token', status: 500, count: 3 },
        { endpoint: 'token', status: 429, retryAfterSeconds: 1, count: 3 },
      ],
    });

    await stack.enterprise.start({
      domain,
      requireApproval: false,
      users: [emails.slice(0, 60), emails.slice(60)],
      serviceAccountRefreshToken: serviceAccount.refresh_token,
      serviceAccountSub: serviceAccount.service_account_id,
      window: 40,
      // Every user answers: the deadline only bounds a run gone wrong. A user who never answers is asked again and
      // expires in test/workflowEndings.test.ts, where nothing else races the deadline.
      userDeadlineMs: 600_000,
      maxUserRequests: 2,
      // Small, so that the domain continues as new several times on the way.
      historyEventBudget: 100,
    });
    await approveAsAdministrator(stack, domain);
    result = await stack.enterprise.waitForResult(domain);
  });

  test('completes with every user counted, having continued as new on the way', () => {
    assert.equal(result.phase, 'completed');
    assert.equal(result.providerName, 'google_free_busy');
    assert.deepEqual(result.counts, { completed: granted, failed: refused.length });
    assert.ok(result.runs >= 2, `continued as new (${result.runs} runs)`);
  });

  test('the refused users failed with their reason, and each user has one outcome', async () => {
    const failed = await stack.enterprise.userOutcomes(domain, { states: ['failed'] });
    assert.deepEqual(failed.map((o) => o.email).sort(), [...refused].sort());
    assert.ok(failed.every((o) => o.reason === 'unable_to_grant_scope'));
    const all = await stack.enterprise.userOutcomes(domain, { limit: 1000 });
    assert.equal(all.length, emails.length);
  });

  test('the report, as CSV in pages of 40, has one row per user in capture order, matching the outcomes', async () => {
    const all = await stack.enterprise.userOutcomes(domain, { limit: 1000 });
    const pages = [];
    for (let offset = 0; offset < emails.length + 40; offset += 40) {
      const page = await stack.enterprise.report(domain, { offset, limit: 40 });
      pages.push(reportCsv(page.rows, { header: offset === 0 }));
    }
    const csv = parseCsv(pages.join(''), { columns: true }) as Array<Record<string, string>>;
    assert.equal(csv.length, emails.length);
    const stored = new Map(all.map((outcome) => [outcome.email, outcome]));
    csv.forEach((row, i) => {
      assert.equal(row.position, String(i));
      assert.equal(row.email, emails[i]);
      const outcome = stored.get(row.email!)!;
      assert.equal(row.state, outcome.state);
      assert.equal(row.reason, outcome.reason ?? '');
      assert.equal(row.provider_name, outcome.state === 'completed' ? 'google_free_busy' : '');
      assert.ok(!Number.isNaN(Date.parse(row.recorded_at!)), row.recorded_at);
    });
  });

  test('Cronofy holds a Free/Busy grant for each completed user and no Read/Write access', async () => {
    const summary = EnterpriseSummary.parse(await got(sim('/_sim/enterprise/state?summary=1')).json());
    assert.equal(summary.users.by_provider.google_free_busy?.active, granted);
    assert.equal(summary.users.active, granted, 'no Read/Write access is left live');
  });

  test('access was requested in batches, the 429s were retried, and the 3-second token was refreshed', async () => {
    const requests = await simulatorGet(stack, '/_sim/requests', RequestLog);
    // The first batch fills the whole window (40) in one request; later ones refill it as users finish.
    const batches = [];
    for (const runId of await runsOf(domain)) {
      batches.push(...(await requestBatches(enterpriseDowngradeId(domain), runId)));
    }
    assert.equal(batches[0], 40, 'the first window asked for in one request');
    assert.equal(
      batches.reduce((sum, size) => sum + size, 0),
      emails.length,
      'the domain asked for each user once',
    );
    // The injected 429s were met, and retried: the run completed. How rare real ones stay under the task queue's
    // rate limit is a matter of timing, measured by bench/enterprise.ts, not decided here.
    const rateLimited = requests.filter((r) => r.status === 429).length;
    assert.ok(rateLimited >= 5, `${rateLimited} 429s, the 5 injected among them`);
    // The refresh margin is longer than the token's life, so each access request refreshes it first: at least the
    // first request after the administrator's exchange did.
    const tokenCalls = requests.filter((r) => r.endpoint === 'token' && r.status === 200).length;
    const exchanges = 1 + granted;
    assert.ok(
      tokenCalls - exchanges > 0,
      `the 3-second service-account token was refreshed (${tokenCalls - exchanges} times)`,
    );
  });

  test('a duplicated callback signalled its user once', async () => {
    for (const email of duplicated) {
      const childId = await userWorkflowId(domain, emails.indexOf(email));
      const requests = await signalledRequests(childId);
      assert.ok(requests.length >= 1);
      assert.equal(
        new Set(requests).size,
        requests.length,
        `${email}: a duplicate callback sent a second signal`,
      );
    }
  });

  test("no run of the domain (the parent's runs and all its users') holds a secret or an e-mail", async () => {
    await assertHistoryHoldsNoSecrets(stack, await executionsOf(domain, emails.length), {
      plaintexts: emails,
    });
  });

  test("each of the parent's runs stayed near its history budget", async () => {
    const histories = await longestHistories(domain);
    assert.ok(
      histories.parent <= 100 + 50,
      `longest parent history: ${histories.parent} events in ${histories.runs} runs`,
    );
  });

  test('retrying the finished domain asks again for exactly its failed users', async () => {
    const toRetry = refused.length;
    await got.put(sim('/_sim/enterprise/outcomes'), { json: {} });
    const retry = await stack.enterprise.retryFailed(domain, { window: 40 });
    assert.equal(retry.users, toRetry);
    const retried = await stack.enterprise.waitForResult(domain);
    assert.equal(retried.phase, 'completed');
    assert.deepEqual(retried.counts, { completed: toRetry });
  });
});

describe('enterprise downgrade', () => {
  test('cancelling a domain cancels its users in flight and leaves nothing running', async () => {
    const domain = 'cancel.example.org';
    const emails = domainEmails(domain, 100);
    const serviceAccount = await createDomain(stack, domain, emails);
    await got.put(sim('/_sim/enterprise/outcomes'), { json: { default: { kind: 'no_callback' } } });
    await stack.enterprise.start({
      domain,
      requireApproval: false,
      users: [emails],
      serviceAccountSub: serviceAccount.service_account_id,
      window: 40,
      userDeadlineMs: 60_000,
    });
    const adminLink = await approveAsAdministrator(stack, domain);
    const parent = await stack.env.client.workflow.getHandle(enterpriseDowngradeId(domain)).describe();
    const adminClaims = stateClaims(adminLink);
    assert.deepEqual([adminClaims.runId, adminClaims.firstRunId], [parent.runId, parent.runId]);
    await waitUntil('the window fills', async () => (await stack.enterprise.get(domain)).started >= 40);
    // Each user's state names the user's run, so its callback signals that run without a lookup.
    const requested = await waitUntil('40 users are asked for access', async () => {
      const users = await userAccessRequests(enterpriseDowngradeId(domain));
      return users.length >= 40 && users;
    });
    for (const user of requested.slice(0, 40)) {
      const { runId } = await stack.env.client.workflow.getHandle(user.workflowId).describe();
      assert.deepEqual([user.runId, user.firstRunId], [runId, runId], `${user.workflowId}: the user's run`);
    }
    // What an operator reads on a waiting user's run in the Temporal UI (its current details).
    const child = stack.env.client.workflow.getHandle(await userWorkflowId(domain, 0));
    const { currentDetails } = z
      .object({ currentDetails: z.string() })
      .parse(await child.query('__temporal_workflow_metadata'));
    assert.match(currentDetails, /\*\*awaiting_user_access\*\* · access request 1 of \d+/);
    assert.match(currentDetails, new RegExp(`User ${emails[0]} of ${domain}`));
    assert.match(currentDetails, /Waiting for Cronofy's callback since \d{4}-\d\d-\d\dT/);
    assert.match(currentDetails, /Asks again at \d{4}-\d\d-\d\dT/);
    await stack.enterprise.cancel(domain);
    const result = await stack.enterprise.waitForResult(domain);
    assert.equal(result.phase, 'cancelled');

    const query = `CronofyDomain = '${domain}' AND ExecutionStatus = 'Running'`;
    const stillRunning = async () => {
      let count = 0;
      for await (const execution of stack.env.client.workflow.list({ query })) count += execution ? 1 : 0;
      return count;
    };
    await waitUntil(
      'no user workflow of the domain is left running',
      async () => (await stillRunning()) === 0,
      { intervalMs: 250 },
    );
    assert.equal(await stillRunning(), 0, 'no user workflow of the domain is left running');
    const counts = await stack.enterpriseUsers.countsByState(result.captureId);
    assert.equal(counts.cancelled, 40, 'every user in flight was recorded as cancelled');
  });

  test('a forged or malformed service-account callback is rejected and signals nothing', async () => {
    const url = `${stack.callbackUrl}${SERVICE_ACCOUNT_CALLBACK_PATH}`;
    const forged = await new StateSigner('someone-else-entirely-000000000000000').sign(
      {
        ...NO_RUN,
        workflowId: 'downgrade-enterprise-x-user-0',
        purpose: 'enterprise_user',
        prompt: 1,
        nonce: StateSigner.newNonce(),
      },
      new Date(Date.now() + 60_000),
    );
    const wrongPurpose = await new StateSigner(STATE_SECRET).sign(
      {
        ...NO_RUN,
        workflowId: 'downgrade-individual-acc_x',
        purpose: 'individual_reauthorization',
        prompt: 1,
        nonce: StateSigner.newNonce(),
      },
      new Date(Date.now() + 60_000),
    );
    const post = (query: string, json: unknown) =>
      got.post(`${url}${query}`, { json, throwHttpErrors: false }).then((response) => response.statusCode);
    assert.equal(
      await post(`?state=${forged}`, { authorization: { code: 'c'.repeat(32), state: forged } }),
      400,
    );
    assert.equal(await post(`?state=${wrongPurpose}`, { authorization: { code: 'c'.repeat(32) } }), 400);
    assert.equal(await post('', { authorization: { code: 'c'.repeat(32) } }), 400);
    assert.equal(await post(`?state=${forged}`, { something: 'else' }), 400);
    assert.equal(await post(`?state=${forged}`, 'not json'), 400);
  });
});

/** The request number of every access callback signalled to a user's workflow (payloads decrypted). */
async function signalledRequests(workflowId: string): Promise<number[]> {
  const history = await stack.env.client.workflow.getHandle(workflowId).fetchHistory();
  const payloads = (history.events ?? []).flatMap((event) => {
    const payload = event.workflowExecutionSignaledEventAttributes?.input?.payloads?.[0];
    return payload ? [payload] : [];
  });
  const decoded = await stack.codec.decode(payloads);
  return decoded.map(
    (payload) =>
      z.object({ request: z.number() }).parse(defaultPayloadConverter.fromPayload(payload)).request,
  );
}

/** The workflow id of the user at `position` of the domain's capture. */
async function userWorkflowId(domain: string, position: number): Promise<string> {
  const { captureId } = await stack.enterprise.get(domain);
  return enterpriseUserDowngradeId(enterpriseDowngradeId(domain), captureId, position);
}

/** Every run of the parent, and the first `users` users' workflows. */
async function executionsOf(domain: string, users: number) {
  const runs: Array<{ workflowId: string; runId: string }> = [];
  for await (const execution of stack.env.client.workflow.list({
    query: `WorkflowId = '${enterpriseDowngradeId(domain)}'`,
  })) {
    runs.push({ workflowId: execution.workflowId, runId: execution.runId });
  }
  // One query for the capture, not one a user: hundreds of concurrent queries queue behind each other
  // on the parent's workflow task and reach the server's query deadline.
  const { captureId } = await stack.enterprise.get(domain);
  const children = Array.from({ length: users }, (_, position) =>
    enterpriseUserDowngradeId(enterpriseDowngradeId(domain), captureId, position),
  );
  return [...runs, ...children];
}

/** The parent's run ids, oldest first. */
async function runsOf(domain: string): Promise<string[]> {
  const runs = [];
  for await (const execution of stack.env.client.workflow.list({
    query: `WorkflowId = '${enterpriseDowngradeId(domain)}'`,
  })) {
    runs.push(execution);
  }
  return runs.sort((a, b) => a.startTime.getTime() - b.startTime.getTime()).map((run) => run.runId);
}

/** The decoded input of every requestUserAccess activity one run scheduled, in order (the latest run by default). */
async function accessRequestInputs(workflowId: string, runId?: string) {
  const history = await stack.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
  const inputs = [];
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name !== 'requestUserAccess') continue;
    const [payload] = await stack.codec.decode(scheduled.input?.payloads ?? []);
    inputs.push(UserAccessInput.parse(defaultPayloadConverter.fromPayload(payload!)));
  }
  return inputs;
}

/** How many users each requestUserAccess activity of one run asked for, in the order scheduled. */
async function requestBatches(workflowId: string, runId: string): Promise<number[]> {
  const inputs = await accessRequestInputs(workflowId, runId);
  return inputs.map((input) => ('users' in input ? input.users.length : input.batch.runIds.length));
}

/** The parent's runs and how long each history grew. */
async function longestHistories(domain: string) {
  let parent = 0;
  let runs = 0;
  for await (const execution of stack.env.client.workflow.list({
    query: `WorkflowId = '${enterpriseDowngradeId(domain)}'`,
  })) {
    const history = await stack.env.client.workflow
      .getHandle(execution.workflowId, execution.runId)
      .fetchHistory();
    parent = Math.max(parent, history.events?.length ?? 0);
    runs += 1;
  }
  return { parent, runs };
}

test('every run stored by the server (every domain, every user, every run) holds no secret or e-mail', async () => {
  const emails = [...domainEmails('big.example.org', 150), ...domainEmails('cancel.example.org', 100)];
  // The big domain's parent runs and 150 users at least; the cancelled domain started only part of its users.
  await assertEveryHistoryHoldsNoSecrets(stack, { plaintexts: emails, atLeast: 152 });
});
