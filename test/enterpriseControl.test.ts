/**
 * Operators' control over a domain's downgrade on the real dev server and the simulator: the preview, approval
 * before anything is revoked, pause and resume, the circuit breaker, and the per-user report.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import got from 'got';
import { z } from 'zod';
import { CampaignClient, DowngradeRefusedError } from '../src/client.js';
import { reportCsv } from '../src/reportCsv.js';
import { Campaigns } from '../src/store/campaigns.js';
import { campaignUserWorkflowId, campaignWorkflowId } from '../src/workflows/campaignDefinitions.js';
import { replayHistories } from '../harness/histories.js';
import { searchAttributes } from '../src/workflows/definitions.js';
import { enterpriseDowngradeId, type EnterpriseStatus } from '../src/workflows/enterpriseDefinitions.js';
import {
  approveAsAdministrator,
  createDomain,
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  waitForState,
  simulatorGet,
  startStack,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';

let stack: Stack;
let worker: RunningWorker;

before(async () => {
  stack = await startStack({ cronofyCallsPerSecond: 25 });
  worker = await stack.startWorker();
});

after(async () => {
  await worker?.stop();
  await stack?.stop();
});

const RequestLog = z.array(z.object({ endpoint: z.string(), status: z.number(), at: z.string() }));
const requestLog = () => simulatorGet(stack, '/_sim/requests', RequestLog);
const emailsOf = (domain: string, count: number) =>
  Array.from({ length: count }, (_, i) => `user${i}@${domain}`);

async function waitForPhase(domain: string, phases: string[], timeoutMs = 30_000): Promise<EnterpriseStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await stack.enterprise.get(domain).catch(() => undefined);
    if (status && phases.includes(status.phase)) return status;
    if (Date.now() > deadline)
      throw new Error(`${domain} stayed ${status?.phase}, not ${phases.join(' or ')}`);
    await sleep(100);
  }
}

/** Waits until every started user has an outcome: then no Cronofy call of the domain's can be on its way. */
async function waitForUsersToSettle(domain: string): Promise<EnterpriseStatus> {
  for (;;) {
    const status = await stack.enterprise.get(domain);
    const finished = Object.values(status.counts).reduce((sum, count) => sum + (count ?? 0), 0);
    if (finished >= status.started) return status;
    await sleep(200);
  }
}

/** Every run of the domain's downgrade, as replayHistories takes them. */
async function domainHistories(domain: string) {
  const histories = [];
  for await (const execution of stack.env.client.workflow.list({
    query: `WorkflowId = '${enterpriseDowngradeId(domain)}'`,
  })) {
    const handle = stack.env.client.workflow.getHandle(execution.workflowId, execution.runId);
    histories.push({ workflowId: execution.workflowId, history: await handle.fetchHistory() });
  }
  return histories;
}

/** The simulator's log stays the same length over `ms`: no Cronofy call at all. */
async function assertNoCronofyCallFor(ms: number, why: string) {
  const before = (await requestLog()).length;
  await sleep(ms);
  const calls = (await requestLog()).slice(before);
  assert.deepEqual(
    calls.map((call) => call.endpoint),
    [],
    `${why}: no Cronofy call in ${ms} ms`,
  );
}

describe('approval', () => {
  test('a preview counts what the downgrade will do, and nothing is revoked until its own preview is approved', async () => {
    const domain = 'approve.example.org';
    const emails = emailsOf(domain, 60);
    const serviceAccount = await createDomain(stack, domain, emails);
    const given = [...emails, emails[3]!.toUpperCase(), emails[7]!, 'not-an-email', 'someone@'];

    const preview = await stack.enterprise.preview({
      domain,
      users: [given.slice(0, 30), given.slice(30)],
      serviceAccountRefreshToken: serviceAccount.refresh_token,
      serviceAccountSub: serviceAccount.service_account_id,
    });
    assert.equal(preview.users.count, 60);
    assert.equal(preview.users.duplicates, 2);
    assert.deepEqual(preview.users.examples.malformed, ['not-an-email', 'someone@']);
    assert.equal(preview.serviceAccount?.providerName, 'google');
    assert.equal(preview.serviceAccount?.domain, domain);
    assert.equal(preview.serviceAccount?.status, 'active');
    assert.deepEqual(preview.cronofyCalls, {
      total: 3 + 2 + 60,
      serviceAccount: 3,
      accessRequests: 2,
      userExchanges: 60,
    });
    assert.equal(preview.estimatedSeconds, Math.ceil(65 / 8));
    assert.deepEqual(preview.warnings, ['2 duplicate emails dropped', '2 malformed emails dropped']);
    assert.deepEqual(await stack.enterprise.getPreview(preview.previewId), preview);

    // The list changed after the first preview: a second preview, with a different id.
    const stale = await stack.enterprise.preview({
      domain,
      users: [emails.slice(1)],
      serviceAccountRefreshToken: serviceAccount.refresh_token,
    });
    assert.notEqual(stale.previewId, preview.previewId);

    const started = await stack.enterprise.start({ domain, previewId: preview.previewId });
    assert.equal(started.previewId, preview.previewId);
    const waiting = await waitForPhase(domain, ['awaiting_approval']);
    assert.equal(waiting.approval?.previewId, preview.previewId);
    assert.equal(waiting.userCount, 60);
    const description = await stack.env.client.workflow.getHandle(enterpriseDowngradeId(domain)).describe();
    assert.deepEqual(description.typedSearchAttributes.get(searchAttributes.state), 'awaiting_approval');
    await sleep(1_000);
    assert.equal(
      (await requestLog()).filter((call) => call.endpoint === 'revoke').length,
      0,
      'nothing revoked',
    );

    await assert.rejects(
      stack.enterprise.approve(domain, {
        previewId: stale.previewId,
        by: 'ops@example.com',
      }),
      (error: Error) =>
        error instanceof DowngradeRefusedError &&
        error.message.includes(`preview ${stale.previewId} is not the one`),
    );
    await assert.rejects(
      stack.enterprise.approve(domain, { previewId: preview.previewId, by: ' ' }),
      /say who decides/,
    );
    await assert.rejects(
      stack.enterprise.pause(domain, { by: 'ops@example.com' }),
      /is awaiting_approval, not moving_users/,
    );
    const approved = await stack.enterprise.approve(domain, {
      previewId: preview.previewId,
      by: 'ops@example.com',
    });
    assert.equal(approved.approval?.decidedBy, 'ops@example.com');
    assert.ok(approved.approval?.decidedAt);
    assert.notEqual(approved.phase, 'awaiting_approval');

    await approveAsAdministrator(stack, domain);
    const result = await stack.enterprise.waitForResult(domain);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 60 });
    assert.equal(result.approval?.decidedBy, 'ops@example.com');
    await assert.rejects(
      stack.enterprise.approve(domain, {
        previewId: preview.previewId,
        by: 'ops@example.com',
      }),
      /has ended \(completed\)/,
    );
    await assert.rejects(stack.enterprise.approve('never.example.org', { previewId: 'pv_x', by: 'ops' }), {
      name: 'DowngradeNotFoundError',
    });
  });

  test('reject ends the run rejected without a single Cronofy call', async () => {
    const domain = 'reject.example.org';
    const emails = emailsOf(domain, 10);
    const serviceAccount = await createDomain(stack, domain, emails);
    const callsBefore = (await requestLog()).length;
    // Named by its sub only: the preview reads nothing at Cronofy either.
    const { previewId } = await stack.enterprise.start({
      domain,
      users: [emails],
      serviceAccountSub: serviceAccount.service_account_id,
    });
    assert.ok(previewId);
    const preview = await stack.enterprise.getPreview(previewId);
    assert.match(preview.warnings.join('\n'), /named by its sub only/);
    await waitForPhase(domain, ['awaiting_approval']);

    const rejected = await stack.enterprise.reject(domain, {
      by: 'security@example.com',
      reason: 'ticket SEC-12 withdrawn',
    });
    assert.equal(rejected.phase, 'rejected');
    const result = await stack.enterprise.waitForResult(domain);
    assert.equal(result.phase, 'rejected');
    assert.equal(result.reason, 'rejected by security@example.com: ticket SEC-12 withdrawn');
    assert.equal((await requestLog()).length, callsBefore, 'no Cronofy call');
  });
});

describe('pause and the circuit breaker', () => {
  test('a paused domain asks Cronofy nothing more, and once resumed completes every user', async () => {
    const domain = 'pause.example.org';
    const emails = emailsOf(domain, 300);
    const serviceAccount = await createDomain(stack, domain, emails);
    await got.put(`${stack.simulator.url}/_sim/rate-limit`, { json: { perSecond: 50, perMinute: 100_000 } });
    const { previewId } = await stack.enterprise.start({
      domain,
      users: [emails],
      serviceAccountRefreshToken: serviceAccount.refresh_token,
      window: 50,
      // Small, so that the pause, the approval and the breaker's count are carried across continue-as-new.
      historyEventBudget: 100,
    });
    await waitForPhase(domain, ['awaiting_approval']);
    await stack.enterprise.approve(domain, {
      previewId: previewId!,
      by: 'ops@example.com',
    });
    await approveAsAdministrator(stack, domain);
    for (;;) {
      const status = await stack.enterprise.get(domain);
      if (status.started >= 100) break;
      await sleep(50);
    }
    const paused = await stack.enterprise.pause(domain, {
      by: 'ops@example.com',
      reason: 'customer call',
    });
    assert.equal(paused.phase, 'paused');
    assert.equal(paused.paused?.by, 'ops@example.com');
    assert.ok(paused.started < 300, `paused half-way (${paused.started} started)`);
    const accessRequestsAtPause = (await requestLog()).filter(
      (c) => c.endpoint === 'service_account_authorizations',
    ).length;

    const settled = await waitForUsersToSettle(domain);
    await assertNoCronofyCallFor(3_000, 'paused');
    const still = await stack.enterprise.get(domain);
    assert.equal(still.phase, 'paused');
    assert.equal(still.started, paused.started, 'no user started while paused');
    assert.equal(settled.started, paused.started);
    assert.equal(
      (await requestLog()).filter((c) => c.endpoint === 'service_account_authorizations').length,
      accessRequestsAtPause,
      'no access request after the pause answered',
    );
    const description = await stack.env.client.workflow.getHandle(enterpriseDowngradeId(domain)).describe();
    assert.deepEqual(description.typedSearchAttributes.get(searchAttributes.state), 'paused');

    await assert.rejects(stack.enterprise.pause(domain, { by: 'ops@example.com' }), /is paused/);
    const resumed = await stack.enterprise.resume(domain, { by: 'ops@example.com' });
    assert.equal(resumed.phase, 'moving_users');
    assert.equal(resumed.paused, undefined);
    const result = await stack.enterprise.waitForResult(domain);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 300 });
    assert.ok(result.runs >= 2, `continued as new (${result.runs} runs)`);
    assert.equal(result.approval?.decidedBy, 'ops@example.com', 'the approval is shown by the last run');
    // Every run of it, updates and all, replays against the current code.
    await replayHistories(await domainHistories(domain));
  });

  test('20 refusals among the first 50 users trip the breaker: the domain pauses, says so, and calls nothing until resumed', async () => {
    const domain = 'breaker.example.org';
    const emails = emailsOf(domain, 120);
    const refused = emails.slice(0, 50).filter((_, i) => i % 5 === 0 || i % 5 === 2); // 20 users
    // Everyone else answers late, the users who take the refused users' places in the window too: until the breaker
    // has counted, the refusals are all the domain has finished, however slowly a busy machine counts them.
    const late = emails.filter((email) => !refused.includes(email));
    const serviceAccount = await createDomain(stack, domain, emails);
    await got.put(`${stack.simulator.url}/_sim/enterprise/outcomes`, {
      json: {
        byEmail: Object.fromEntries([
          ...refused.map((email) => [email, { kind: 'error', error: 'unable_to_grant_scope' }]),
          ...late.map((email) => [email, { kind: 'late', delayMs: 10_000 }]),
        ]),
      },
    });
    await stack.enterprise.start({
      domain,
      requireApproval: false,
      users: [emails],
      serviceAccountRefreshToken: serviceAccount.refresh_token,
      window: 50,
    });
    await approveAsAdministrator(stack, domain);
    const tripped = await waitForPhase(domain, ['paused', 'completed']);
    assert.equal(tripped.phase, 'paused');
    assert.equal(tripped.paused?.by, 'circuit breaker');
    assert.match(tripped.paused?.reason ?? '', /^circuit breaker: 2\d of \d+ users failed$/);
    const workflowId = enterpriseDowngradeId(domain);
    const event = stack.webhookEvents.find(
      (e) => e.type === 'domain_paused' && e.status.workflowId === workflowId,
    );
    assert.ok(event, 'the application was told');
    const accessRequestsAtTrip = (await requestLog()).filter(
      (c) => c.endpoint === 'service_account_authorizations',
    ).length;

    await waitForUsersToSettle(domain);
    await assertNoCronofyCallFor(3_000, 'tripped');
    const still = await stack.enterprise.get(domain);
    assert.equal(still.phase, 'paused');
    assert.equal(still.started, tripped.started, 'no user started after the trip');
    assert.equal(
      (await requestLog()).filter((c) => c.endpoint === 'service_account_authorizations').length,
      accessRequestsAtTrip,
    );

    await got.put(`${stack.simulator.url}/_sim/enterprise/outcomes`, { json: {} });
    await stack.enterprise.resume(domain, { by: 'ops@example.com' });
    const result = await stack.enterprise.waitForResult(domain);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 100, failed: 20 });
    await replayHistories(await domainHistories(domain));

    const report = await stack.enterprise.report(domain, { limit: 1000 });
    assert.equal(report.rows.length, 120);
    assert.deepEqual(
      report.rows.filter((row) => row.state === 'failed').map((row) => row.email),
      refused,
    );
    assert.ok(
      report.rows
        .filter((row) => row.state === 'failed')
        .every((row) => row.reason === 'unable_to_grant_scope'),
    );
    assert.ok(
      report.rows
        .filter((row) => row.state === 'completed')
        .every((row) => row.providerName === 'google_free_busy'),
    );
    const csv = reportCsv(report.rows, { header: true }).trim().split('\n');
    assert.equal(csv[0], 'position,email,state,reason,provider_name,recorded_at');
    assert.match(csv[1]!, /^0,user0@breaker\.example\.org,failed,unable_to_grant_scope,,\d{4}-/);
  });
});

describe('a 200-user Individual campaign: 180 choose Free/Busy, 10 decline, 10 never answer', () => {
  const people: Array<Awaited<ReturnType<typeof createReadWriteUser>>> = [];
  let campaigns: CampaignClient;
  let preview: Awaited<ReturnType<CampaignClient['preview']>>;
  let beforeApproval: { phase: string; revokes: number; revokesBefore: number; wrongPreview: unknown };
  let approved: Awaited<ReturnType<CampaignClient['approve']>>;
  let result: Awaited<ReturnType<CampaignClient['waitForResult']>>;
  let workflowIdOf: (position: number) => string;

  // One campaign, from preview to result, which every test below reads.
  before(async () => {
    campaigns = new CampaignClient({
      temporal: stack.env.client,
      taskQueue: stack.taskQueue,
      campaigns: new Campaigns(stack.database),
      store: stack.store,
      // Long enough for all 190 answers to arrive on a busy machine; the 10 silent ones then expire.
      defaults: { deadlineMs: 40_000, reminderIntervalMs: 60_000, maxPrompts: 1 },
    });
    for (let i = 0; i < 200; i++) people.push(await createReadWriteUser(stack, `camper${i}@example.com`));
    const given = [
      ...people.map((person, i) => ({
        sub: person.sub,
        userId: `u${i}`,
        refreshToken: person.refresh_token,
      })),
      { sub: people[0]!.sub },
      { sub: 'not-a-sub' },
    ];
    preview = await campaigns.preview({ name: 'spring', users: [given] });

    const revokes = async () => (await requestLog()).filter((call) => call.endpoint === 'revoke').length;
    const revokesBefore = await revokes();
    await campaigns.start({ name: 'spring', previewId: preview.previewId, window: 200 });
    await sleep(1_000);
    beforeApproval = {
      phase: (await campaigns.get('spring')).phase,
      revokes: await revokes(),
      revokesBefore,
      wrongPreview: await campaigns.approve('spring', { previewId: 'pv_other', by: 'ops' }).then(
        () => undefined,
        (error: unknown) => error,
      ),
    };
    approved = await campaigns.approve('spring', { previewId: preview.previewId, by: 'ops' });

    const { captureId } = await campaigns.get('spring');
    workflowIdOf = (position) => campaignUserWorkflowId(campaignWorkflowId('spring'), captureId, position);
    const answer = async (position: number) => {
      if (position >= 190) return;
      // A late user's revoke queues behind the campaign's other Cronofy calls (400 at 25/s), so it may wait far
      // longer than one downgrade would.
      const status = await waitForState(
        stack,
        workflowIdOf(position),
        (state) => state === 'awaiting_reauthorization',
        60_000,
      );
      const decision = position < 180 ? 'free_busy_google' : 'deny';
      const location = await decideOnConsentPage(status.authorizationUrl!, decision, {
        email: people[position]!.email,
      });
      assert.equal((await followRedirect(location)).status, 303);
    };
    for (let from = 0; from < 200; from += 20) {
      await Promise.all(Array.from({ length: 20 }, (_, i) => answer(from + i)));
    }
    result = await campaigns.waitForResult('spring');
  });

  test('the preview counts 200 users and 400 Cronofy calls, dropping a duplicate and a malformed sub', () => {
    assert.equal(preview.users.count, 200);
    assert.deepEqual(preview.cronofyCalls, { total: 400, revokes: 200, userExchanges: 200 });
    assert.deepEqual(preview.warnings, ['1 duplicate subs dropped', '1 malformed subs dropped']);
  });

  test('it waits for approval, revoking nobody, and refuses an approval that names another preview', () => {
    assert.equal(beforeApproval.phase, 'awaiting_approval');
    assert.equal(beforeApproval.revokes, beforeApproval.revokesBefore, 'nobody revoked before approval');
    assert.match(String(beforeApproval.wrongPreview), /preview pv_other is not the one/);
    assert.equal(approved.approval?.decidedBy, 'ops');
  });

  test('it completes with 180 completed, 10 denied and 10 expired', () => {
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 180, denied: 10, expired: 10 });
  });

  test('the report lists every user in order with their own id, state and provider', async () => {
    const report = await campaigns.report('spring', { limit: 1000 });
    assert.equal(report.rows.length, 200);
    assert.deepEqual(
      report.rows.map((row) => [row.sub, row.userId, row.state]),
      people.map((person, i) => [
        person.sub,
        `u${i}`,
        i < 180 ? 'completed' : i < 190 ? 'denied' : 'expired',
      ]),
    );
    assert.ok(report.rows.slice(0, 180).every((row) => row.providerName === 'google_free_busy'));
  });

  test('each user is their own individualDowngrade', async () => {
    const own = await stack.individual.get(workflowIdOf(0));
    assert.equal(own.state, 'completed');
  });

  test("the campaign's histories replay against the current workflow code", async () => {
    await replayHistories(await campaignHistories());
  });
});

async function campaignHistories() {
  const histories = [];
  for await (const execution of stack.env.client.workflow.list({
    query: `WorkflowId = '${campaignWorkflowId('spring')}'`,
  })) {
    const handle = stack.env.client.workflow.getHandle(execution.workflowId, execution.runId);
    histories.push({ workflowId: execution.workflowId, history: await handle.fetchHistory() });
  }
  return histories;
}
