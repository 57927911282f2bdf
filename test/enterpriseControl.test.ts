/**
 * Operators' control over a domain's downgrade and a campaign, end to end on the real dev server and the simulator:
 * the preview, approval before anything is revoked, pause and resume, and the per-user report. Each decision is
 * tested by the workflow code alone in test/operatedRun.test.ts and test/domainControl.test.ts; these are the few
 * runs that show the parts work together.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import got from 'got';
import { z } from 'zod';
import { CampaignClient, DowngradeRefusedError } from '../src/client.js';
import { Campaigns } from '../src/store/campaigns.js';
import { campaignUserWorkflowId, campaignWorkflowId } from '../src/workflows/campaignDefinitions.js';
import { replayHistories } from '../harness/histories.js';
import { waitUntil } from '../harness/waitUntil.js';
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

/** Waits until the domain's run is in one of `phases`: a run that is reaches none of them fails at the ceiling. */
const waitForPhase = (domain: string, phases: string[]): Promise<EnterpriseStatus> =>
  waitUntil(`${domain} is ${phases.join(' or ')}`, async () => {
    const status = await stack.enterprise.get(domain);
    return phases.includes(status.phase) && status;
  });

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
    // The run waits at the gate: whatever it would do before approval, it has done.
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

describe('pause', () => {
  // The decisions (a paused run starts nobody, the breaker trips, resume forgives) are decided by the workflow code
  // alone and tested with stubbed activities in test/operatedRun.test.ts; this is the smoke run end to end.
  test('a paused domain starts no user until resumed, then completes every user across continue-as-new', async () => {
    const domain = 'pause.example.org';
    const emails = emailsOf(domain, 60);
    const serviceAccount = await createDomain(stack, domain, emails);
    await got.put(`${stack.simulator.url}/_sim/rate-limit`, { json: { perSecond: 50, perMinute: 100_000 } });
    const { previewId } = await stack.enterprise.start({
      domain,
      users: [emails],
      serviceAccountRefreshToken: serviceAccount.refresh_token,
      window: 10,
      // Small, so that the pause, the approval and the breaker's count are carried across continue-as-new.
      historyEventBudget: 100,
    });
    await waitForPhase(domain, ['awaiting_approval']);
    await stack.enterprise.approve(domain, { previewId: previewId!, by: 'ops@example.com' });
    await approveAsAdministrator(stack, domain);
    await waitUntil('ten users started', async () => (await stack.enterprise.get(domain)).started >= 10);
    const paused = await stack.enterprise.pause(domain, { by: 'ops@example.com', reason: 'customer call' });
    assert.equal(paused.phase, 'paused');
    assert.equal(paused.paused?.by, 'ops@example.com');
    assert.ok(paused.started < 60, `paused part-way (${paused.started} started)`);

    // Every user started before the pause finishes; none starts after it.
    const settled = await waitUntil('the started users finished', async () => {
      const status = await stack.enterprise.get(domain);
      const finished = Object.values(status.counts).reduce((sum, count) => sum + (count ?? 0), 0);
      return finished >= status.started && status;
    });
    assert.equal(settled.phase, 'paused');
    assert.equal(settled.started, paused.started, 'no user started while paused');
    const description = await stack.env.client.workflow.getHandle(enterpriseDowngradeId(domain)).describe();
    assert.deepEqual(description.typedSearchAttributes.get(searchAttributes.state), 'paused');

    await assert.rejects(stack.enterprise.pause(domain, { by: 'ops@example.com' }), /is paused/);
    const resumed = await stack.enterprise.resume(domain, { by: 'ops@example.com' });
    assert.equal(resumed.phase, 'moving_users');
    assert.equal(resumed.paused, undefined);
    const result = await stack.enterprise.waitForResult(domain);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 60 });
    assert.ok(result.runs >= 2, `continued as new (${result.runs} runs)`);
    assert.equal(result.approval?.decidedBy, 'ops@example.com', 'the approval is shown by the last run');
    // Every run of it, updates and all, replays against the current code.
    await replayHistories(await domainHistories(domain));
  });
});

describe('a 30-person Individual campaign: 25 choose Free/Busy, 5 decline', () => {
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
      // Everyone answers: nobody's deadline is reached (expiry is decided in test/workflowEndings.test.ts).
      defaults: { deadlineMs: 3_600_000, reminderIntervalMs: 3_600_000, maxPrompts: 1 },
    });
    for (let i = 0; i < 30; i++) people.push(await createReadWriteUser(stack, `camper${i}@example.com`));
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
    await campaigns.start({ name: 'spring', previewId: preview.previewId, window: 30 });
    // The run waits at the gate: whatever it would do before approval, it has done.
    beforeApproval = {
      phase: await waitUntil('the campaign waits for approval', async () => {
        const { phase } = await campaigns.get('spring');
        return phase === 'awaiting_approval' && phase;
      }),
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
      const status = await waitForState(
        stack,
        workflowIdOf(position),
        (state) => state === 'awaiting_reauthorization',
        240_000,
      );
      const decision = position < 25 ? 'free_busy_google' : 'deny';
      const location = await decideOnConsentPage(status.authorizationUrl!, decision, {
        email: people[position]!.email,
      });
      assert.equal((await followRedirect(location)).status, 303);
    };
    for (let from = 0; from < 30; from += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, i) => answer(from + i)));
    }
    result = await campaigns.waitForResult('spring');
  });

  test('the preview counts 30 users and 60 Cronofy calls, dropping a duplicate and a malformed sub', () => {
    assert.equal(preview.users.count, 30);
    assert.deepEqual(preview.cronofyCalls, { total: 60, revokes: 30, userExchanges: 30 });
    assert.deepEqual(preview.warnings, ['1 duplicate subs dropped', '1 malformed subs dropped']);
  });

  test('it waits for approval, revoking nobody, and refuses an approval that names another preview', () => {
    assert.equal(beforeApproval.phase, 'awaiting_approval');
    assert.equal(beforeApproval.revokes, beforeApproval.revokesBefore, 'nobody revoked before approval');
    assert.match(String(beforeApproval.wrongPreview), /preview pv_other is not the one/);
    assert.equal(approved.approval?.decidedBy, 'ops');
  });

  test('it completes with 25 completed and 5 denied', () => {
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 25, denied: 5 });
  });

  test('the report lists every user in order with their own id, state and provider', async () => {
    const report = await campaigns.report('spring', { limit: 1000 });
    assert.equal(report.rows.length, 30);
    assert.deepEqual(
      report.rows.map((row) => [row.sub, row.userId, row.state]),
      people.map((person, i) => [person.sub, `u${i}`, i < 25 ? 'completed' : 'denied']),
    );
    assert.ok(report.rows.slice(0, 25).every((row) => row.providerName === 'google_free_busy'));
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
