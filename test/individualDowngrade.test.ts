import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import got from 'got';
import { setTimeout as sleep } from 'node:timers/promises';
import { defaultPayloadConverter } from '@temporalio/common';
import { z } from 'zod';
import { ENCRYPTED_ENCODING } from '../src/codec/encryptionCodec.js';
import { StateSigner } from '../src/contracts/stateToken.js';
import { NO_RUN, TEST_RETRY_SCHEDULE_MS } from '../harness/stack.js';
import { unescapeHtml } from '../harness/consentForm.js';
import { startCallbackServer } from '../src/callbacks/server.js';
import { temporalCallbackDeps } from '../src/callbacks/temporalSignals.js';
import { DowngradeNotFoundError } from '../src/client.js';
import { individualDowngradeId } from '../src/workflows/definitions.js';
import {
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  openAnsweredPage,
  signalCount,
  simulatorGet,
  startStack,
  stateClaims,
  STATE_SECRET,
  waitForState,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import {
  assertEveryHistoryHoldsNoSecrets,
  rawHistory,
  recordHistories,
  replayHistories,
} from '../harness/histories.js';
import { waitUntil } from '../harness/waitUntil.js';

const SimulatorState = z.object({
  accounts: z.array(
    z.object({
      sub: z.string(),
      authorizations: z.array(z.object({ provider_name: z.string(), revoked: z.boolean() })),
    }),
  ),
});
const DowngradeResultShape = z.object({ state: z.string() }).loose();
const RequestLog = z.array(z.object({ endpoint: z.string().optional(), status: z.number() }));

let stack: Stack;
let worker: RunningWorker;
const workflowIds: string[] = [];
const emails: string[] = [];

before(async () => {
  stack = await startStack();
  worker = await stack.startWorker();
});

after(async () => {
  await worker?.stop();
  await stack?.stop();
});

let userCount = 0;
async function startDowngrade(
  options: Parameters<Stack['individual']['start']>[0] extends infer T ? Partial<T> : never = {},
) {
  userCount += 1;
  const user = await createReadWriteUser(stack, `person${userCount}@example.com`);
  emails.push(user.email);
  const { workflowId } = await stack.individual.start({
    sub: user.sub,
    userId: `user-${userCount}`,
    refreshToken: user.refresh_token,
    ...options,
  });
  workflowIds.push(workflowId);
  const status = await waitForState(stack, workflowId, (state) => state === 'awaiting_reauthorization');
  return { user, workflowId, authorizationUrl: status.authorizationUrl! };
}

async function authorizationsOf(sub: string) {
  const state = await simulatorGet(stack, '/_sim/state', SimulatorState);
  return state.accounts.find((account) => account.sub === sub)?.authorizations ?? [];
}

async function requestsTo(endpoint: string) {
  return (await simulatorGet(stack, '/_sim/requests', RequestLog)).filter(
    (entry) => entry.endpoint === endpoint,
  );
}

describe('individual downgrade', () => {
  test('choosing Free/Busy with Google completes, revokes Read/Write and hands the app new credentials', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    const url = new URL(authorizationUrl);
    assert.equal(url.searchParams.get('scope'), 'free_busy_write');
    assert.equal(url.searchParams.get('redirect_uri'), stack.redirectUri);

    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email });
    const callback = await followRedirect(location);
    assert.equal(callback.status, 303);
    // The browser leaves the URL with the code for one with neither code nor state (RFC 9700, 4.2.4).
    assert.equal(callback.location?.pathname, '/downgrade/answered');
    assert.deepEqual([...(callback.location?.searchParams.keys() ?? [])], ['answer']);
    assert.equal(callback.headers['cache-control'], 'no-store');
    assert.equal(callback.headers['referrer-policy'], 'no-referrer');
    assert.match(
      String(callback.headers['content-security-policy']),
      /default-src 'none'.*frame-ancestors 'none'/,
    );
    const page = await openAnsweredPage(callback.location!);
    assert.equal(page.status, 200);
    assert.match(page.body, /<h1>Your calendar is connected with Free\/Busy<\/h1>/);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);

    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');
    assert.equal(result.providerName, 'google_free_busy');
    // Reloading the page reads the status again and writes nothing.
    const eventsBefore = (await historyOf(workflowId)).length;
    assert.equal((await openAnsweredPage(callback.location!)).body, page.body);
    assert.equal((await historyOf(workflowId)).length, eventsBefore);

    const credentials = await stack.individual.getNewCredentials(workflowId);
    assert.equal(credentials.sub, user.sub);
    assert.equal(credentials.providerName, 'google_free_busy');
    const userinfo = await stack.cronofy.userInfo(credentials.accessToken);
    assert.equal(userinfo.sub, user.sub);

    const authorizations = await authorizationsOf(user.sub);
    assert.deepEqual(
      authorizations.map((a) => [a.provider_name, a.revoked]),
      [
        ['google', true],
        ['google_free_busy', false],
      ],
    );
    const events = stack.webhookEvents.filter((event) => event.status.workflowId === workflowId);
    assert.deepEqual(
      events.map((event) => event.type),
      ['authorization_required', 'finished'],
    );
    assert.equal(events[0]?.status.authorizationUrl, authorizationUrl);
  });

  test('choosing Free/Busy with Microsoft, with the provider hint, completes', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade({
      providerHint: 'ms_graph_free_busy',
    });
    assert.equal(new URL(authorizationUrl).searchParams.get('provider_name'), 'ms_graph_free_busy');
    await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'free_busy_microsoft', { email: user.email }),
    );
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');
    assert.equal(result.providerName, 'ms_graph_free_busy');
  });

  test('Read/Write chosen again re-prompts, revoking the unwanted authorization, then Free/Busy completes', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    const callback = await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'read_write_google', { email: user.email }),
    );
    // The page waits for the verdict: the next prompt, whose link it shows.
    const page = await openAnsweredPage(callback.location!);
    assert.match(page.body, /<h1>You chose Read\/Write access again<\/h1>/);
    const reprompt = await waitUntilPrompt(workflowId, 2);
    assert.notEqual(reprompt.authorizationUrl, authorizationUrl);
    assert.equal(linkOn(page.body), reprompt.authorizationUrl);

    await followRedirect(
      await decideOnConsentPage(reprompt.authorizationUrl!, 'free_busy_google', { email: user.email }),
    );
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');
    assert.equal(result.prompt, 2);
    const live = (await authorizationsOf(user.sub)).filter((a) => !a.revoked).map((a) => a.provider_name);
    assert.deepEqual(live, ['google_free_busy']);
  });

  test('Read/Write chosen on every prompt gives up after the configured count', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade({ maxPrompts: 2 });
    await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'read_write_google', { email: user.email }),
    );
    const reprompt = await waitUntilPrompt(workflowId, 2);
    const last = await followRedirect(
      await decideOnConsentPage(reprompt.authorizationUrl!, 'read_write_microsoft', { email: user.email }),
    );
    const page = await openAnsweredPage(last.location!);
    assert.match(page.body, /<h1>You chose Read\/Write access again<\/h1>/);
    assert.match(page.body, /That was the last time we could ask/);
    assert.equal(linkOn(page.body), undefined);
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'read_write_kept');
    assert.equal(result.prompt, 2);
    assert.equal(result.credentialRef, undefined);
    assert.ok(
      (await authorizationsOf(user.sub)).every((a) => a.revoked),
      'no Read/Write authorization is left live',
    );
  });

  test('starting with the link hands back the consent link in the same call', async () => {
    userCount += 1;
    const user = await createReadWriteUser(stack, `person${userCount}@example.com`);
    emails.push(user.email);
    const started = await stack.individual.startWithLink({ sub: user.sub });
    workflowIds.push(started.workflowId);
    assert.ok(
      started.authorizationUrl.startsWith(`${stack.simulator.url}/oauth/authorize?`),
      started.authorizationUrl,
    );
    const status = await stack.individual.get(started.workflowId);
    assert.equal(status.state, 'awaiting_reauthorization');
    assert.equal(status.authorizationUrl, started.authorizationUrl);
    assert.equal(status.authorizationExpiresAt, started.authorizationExpiresAt);
    // Again while it waits: the same run, the same link.
    const again = await stack.individual.startWithLink({ sub: user.sub });
    assert.deepEqual(again, started);

    const location = await decideOnConsentPage(started.authorizationUrl, 'free_busy_google', {
      email: user.email,
    });
    assert.equal((await followRedirect(location)).status, 303);
    assert.equal((await stack.individual.waitForResult(started.workflowId)).state, 'completed');
  });

  test('a person who denies access ends the downgrade as denied', async () => {
    const { workflowId, authorizationUrl } = await startDowngrade();
    const location = await decideOnConsentPage(authorizationUrl, 'deny', {});
    assert.equal(location.searchParams.get('error'), 'access_denied');
    const callback = await followRedirect(location);
    assert.equal(callback.status, 303);
    assert.match((await openAnsweredPage(callback.location!)).body, /<h1>You declined<\/h1>/);
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'denied');
  });

  test('choosing No Access ends as no_access and leaves no authorization live', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    const callback = await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'no_access', { email: user.email }),
    );
    assert.match((await openAnsweredPage(callback.location!)).body, /<h1>You chose No Access<\/h1>/);
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'no_access');
    assert.ok((await authorizationsOf(user.sub)).every((a) => a.revoked));
  });

  test('linking another calendar account ends as other_account and revokes that authorization', async () => {
    const { workflowId, authorizationUrl } = await startDowngrade();
    const callback = await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'free_busy_google', {
        newEmail: `someone-else-${Date.now()}@example.com`,
      }),
    );
    assert.match(
      (await openAnsweredPage(callback.location!)).body,
      /<h1>You signed in with another account<\/h1>/,
    );
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'other_account');
    const state = await simulatorGet(stack, '/_sim/state', SimulatorState);
    const other = state.accounts.find((account) =>
      account.authorizations.some((a) => a.provider_name === 'google_free_busy' && a.revoked),
    );
    assert.ok(other, "the other account's authorization was revoked");
  });

  test('nobody answering before the deadline ends as expired, after reminders', async () => {
    const { workflowId } = await startDowngrade({ deadlineMs: 2_500, reminderIntervalMs: 800 });
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'expired');
    // Each reminder's timer starts once the one before it was handled, so how many fit before the deadline depends
    // on how soon a busy worker takes each: at least the first (at 800 ms of 2,500).
    assert.ok(result.remindersSent >= 1, `sent ${result.remindersSent} reminders`);
    const reminders = stack.webhookEvents.filter(
      (e) => e.status.workflowId === workflowId && e.type === 'reminder',
    );
    assert.equal(reminders.length, result.remindersSent);
  });

  test('a cancelled downgrade ends as cancelled and its link no longer works', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    await stack.individual.cancel(workflowId);
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'cancelled');
    const page = await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email }),
    );
    assert.equal(page.status, 410);
  });

  test('starting the same user twice returns the running downgrade', async () => {
    const user = await createReadWriteUser(stack, `twice-${Date.now()}@example.com`);
    const first = await stack.individual.start({ sub: user.sub });
    const second = await stack.individual.start({ sub: user.sub });
    workflowIds.push(first.workflowId);
    assert.equal(first.workflowId, individualDowngradeId(user.sub));
    assert.equal(second.runId, first.runId);
    await stack.individual.cancel(first.workflowId);
    assert.equal((await stack.individual.waitForResult(first.workflowId)).state, 'cancelled');
  });

  test('an unknown downgrade id is a DowngradeNotFoundError', async () => {
    await assert.rejects(stack.individual.get('downgrade-individual-acc_nobody'), DowngradeNotFoundError);
  });
});

describe('revoke when the link is opened', () => {
  const RevokeLog = z.array(z.object({ endpoint: z.string(), at: z.string() }).loose());
  const revokes = async () =>
    (await simulatorGet(stack, '/_sim/requests', RevokeLog)).filter((entry) => entry.endpoint === 'revoke');
  const open = (url: string) => got(url, { followRedirect: false, throwHttpErrors: false });

  async function startOnOpen(options: { deadlineMs?: number } = {}) {
    userCount += 1;
    const user = await createReadWriteUser(stack, `person${userCount}@example.com`);
    emails.push(user.email);
    const { workflowId } = await stack.individual.start({
      sub: user.sub,
      refreshToken: user.refresh_token,
      revokeWhenOpened: true,
      ...options,
    });
    workflowIds.push(workflowId);
    const status = await waitForState(stack, workflowId, (state) => state === 'awaiting_link_open');
    return { user, workflowId, link: status.authorizationUrl! };
  }

  test('nothing is revoked until the person opens the link, which revokes and sends them on to Cronofy', async () => {
    const revokesBefore = (await revokes()).length;
    const { user, workflowId, link } = await startOnOpen();
    assert.ok(link.startsWith(`${stack.callbackUrl}/downgrade/open?state=`), link);
    const event = stack.webhookEvents.find((e) => e.status.workflowId === workflowId);
    assert.equal(event?.type, 'authorization_required');
    assert.equal(event?.status.authorizationUrl, link, "the application is handed the service's own link");
    await sleep(1_000);
    assert.equal((await revokes()).length, revokesBefore, 'nothing revoked before the link is opened');
    assert.deepEqual(
      (await authorizationsOf(user.sub)).map((a) => [a.provider_name, a.revoked]),
      [['google', false]],
    );

    const opened = await open(link);
    assert.equal(opened.statusCode, 303);
    assert.equal(opened.headers['cache-control'], 'no-store');
    assert.equal(opened.headers['referrer-policy'], 'no-referrer');
    const consentUrl = opened.headers.location!;
    assert.ok(consentUrl.startsWith(`${stack.simulator.url}/oauth/authorize?`), consentUrl);
    const consentPage = await got(consentUrl);
    const consentShownAt = Date.now();
    assert.equal(consentPage.statusCode, 200);
    const revoked = (await revokes()).slice(revokesBefore);
    assert.equal(revoked.length, 1, 'revoked once, when the link was opened');
    const lead = consentShownAt - Date.parse(revoked[0]!.at);
    assert.ok(lead >= 0 && lead < 2_000, `the revoke preceded the consent page by ${lead} ms`);

    // Opening it again while that prompt waits goes to the same consent page.
    const again = await open(link);
    assert.equal(again.statusCode, 303);
    assert.equal(again.headers.location, consentUrl);
    const tampered = await open(
      link.replace(/state=([^&]+)/, (_, state: string) => `state=${state.slice(0, -4)}AAAA`),
    );
    assert.equal(tampered.statusCode, 400);

    const location = await decideOnConsentPage(consentUrl, 'free_busy_google', { email: user.email });
    assert.equal((await followRedirect(location)).status, 303);
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');
    assert.equal((await open(link)).statusCode, 410, 'the link of an ended downgrade');
  });

  test('a link never opened expires with the connection still Read/Write', async () => {
    const revokesBefore = (await revokes()).length;
    const { user, workflowId, link } = await startOnOpen({ deadlineMs: 1_500 });
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'link_not_opened');
    assert.match(result.reason ?? '', /never opened: the connection was not revoked and stays Read\/Write/);
    assert.equal((await revokes()).length, revokesBefore);
    assert.deepEqual(
      (await authorizationsOf(user.sub)).map((a) => [a.provider_name, a.revoked]),
      [['google', false]],
    );
    assert.equal((await open(link)).statusCode, 410, 'an expired link');
  });
});

describe('callback state', () => {
  test('a forged state is rejected with 400 and no signal is sent', async () => {
    const { workflowId, authorizationUrl } = await startDowngrade();
    const realState = new URL(authorizationUrl).searchParams.get('state')!;
    const [header, payload, signature] = realState.split('.');
    const tamperedPayload = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), prompt: 2 }),
    ).toString('base64url');
    const forgedBySomeoneElse = await new StateSigner('another-secret-that-is-long-enough-000000').sign(
      {
        ...NO_RUN,
        workflowId,
        purpose: 'individual_reauthorization',
        prompt: 1,
        nonce: StateSigner.newNonce(),
      },
      new Date(Date.now() + 60_000),
    );
    for (const state of [
      `${header}.${tamperedPayload}.${signature}`,
      forgedBySomeoneElse,
      'not-a-token',
      `${realState}x`,
    ]) {
      const response = await followRedirect(
        `${stack.callbackUrl}/oauth/callback?code=${'a'.repeat(32)}&state=${encodeURIComponent(state)}`,
      );
      assert.equal(response.status, 400, `state ${state.slice(0, 20)}…`);
      assert.equal(response.headers['cache-control'], 'no-store');
      assert.match(String(response.headers['content-security-policy']), /frame-ancestors 'none'/);
    }
    assert.equal(await signalCount(stack, workflowId), 0);
    await stack.individual.cancel(workflowId);
  });

  test('an expired state is rejected with 410 and no signal is sent', async () => {
    const { workflowId } = await startDowngrade();
    const expired = await new StateSigner(STATE_SECRET).sign(
      {
        ...NO_RUN,
        workflowId,
        purpose: 'individual_reauthorization',
        prompt: 1,
        nonce: StateSigner.newNonce(),
      },
      new Date(Date.now() - 1_000),
    );
    const response = await followRedirect(
      `${stack.callbackUrl}/oauth/callback?code=${'b'.repeat(32)}&state=${expired}`,
    );
    assert.equal(response.status, 410);
    assert.equal(await signalCount(stack, workflowId), 0);
    await stack.individual.cancel(workflowId);
  });

  test('a replayed callback is rejected with 409 and sends no second signal', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email });
    assert.equal((await followRedirect(location)).status, 303);
    assert.equal((await followRedirect(location)).status, 409);
    assert.equal((await stack.individual.waitForResult(workflowId)).state, 'completed');
    assert.equal(await signalCount(stack, workflowId), 1);
  });

  test('malformed callbacks get 400', async () => {
    for (const query of [
      '',
      '?code=abc',
      '?state=x',
      '?state=x&code=a&error=access_denied',
      '?state=x&code=a&extra=1',
    ]) {
      const response = await followRedirect(`${stack.callbackUrl}/oauth/callback${query}`);
      assert.equal(response.status, 400, `query ${query}`);
    }
  });

  test('the state names the run that issued it and its chain, and its callback completes that run', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    const { runId } = await stack.env.client.workflow.getHandle(workflowId).describe();
    const claims = stateClaims(authorizationUrl);
    assert.deepEqual([claims.runId, claims.firstRunId], [runId, runId]);
    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email });
    assert.equal((await followRedirect(location)).status, 303);
    assert.equal((await stack.individual.waitForResult(workflowId)).state, 'completed');
    assert.equal(await signalCount(stack, workflowId), 1);
  });

  test('a state from a run an operator has reset reaches the run that replaced it', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    const handle = stack.env.client.workflow.getHandle(workflowId);
    const { runId: issuingRunId } = await handle.describe();
    // Reset to the workflow task that took the consent link: the new run replays it, and waits for the same state.
    const events = (await handle.fetchHistory()).events ?? [];
    const id = (eventId: unknown) => Number(String(eventId)); // event ids are Longs
    const linkScheduled = events.find(
      (event) =>
        event.activityTaskScheduledEventAttributes?.activityType?.name === 'createAuthorizationRequest',
    )?.eventId;
    const linkCompleted = events.find(
      (event) => id(event.activityTaskCompletedEventAttributes?.scheduledEventId) === id(linkScheduled),
    )?.eventId;
    const resetPoint = events.find(
      (event) => event.workflowTaskCompletedEventAttributes && id(event.eventId) > id(linkCompleted),
    )?.eventId;
    assert.ok(linkScheduled && linkCompleted && resetPoint, 'the consent link was taken in a completed task');
    const { runId: resetRunId } = await stack.env.client.workflowService.resetWorkflowExecution({
      namespace: 'default',
      workflowExecution: { workflowId, runId: issuingRunId },
      workflowTaskFinishEventId: resetPoint,
      requestId: randomUUID(),
      reason: 'test: an operator resets a waiting downgrade',
    });
    assert.ok(resetRunId && resetRunId !== issuingRunId);
    assert.equal(stateClaims(authorizationUrl).runId, issuingRunId);

    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email });
    assert.equal((await followRedirect(location)).status, 303);
    const result = await stack.env.client.workflow.getHandle(workflowId, resetRunId).result();
    assert.equal(DowngradeResultShape.parse(result).state, 'completed');
    const issuingRun = await stack.env.client.workflow.getHandle(workflowId, issuingRunId).describe();
    assert.equal(issuingRun.status.name, 'TERMINATED');
    assert.equal(await signalCount(stack, workflowId), 1);
  });

  test("a state from an ended downgrade gets 410 and does not reach the same user's next downgrade", async () => {
    const first = await startDowngrade();
    await stack.individual.cancel(first.workflowId);
    assert.equal((await stack.individual.waitForResult(first.workflowId)).state, 'cancelled');
    const next = await stack.individual.start({
      sub: first.user.sub,
      refreshToken: first.user.refresh_token,
    });
    assert.equal(next.workflowId, first.workflowId, 'the same workflow id, a new chain of runs');
    await waitForState(stack, next.workflowId, (state) => state === 'awaiting_reauthorization');

    const location = await decideOnConsentPage(first.authorizationUrl, 'free_busy_google', {
      email: first.user.email,
    });
    assert.equal((await followRedirect(location)).status, 410);
    assert.equal(await signalCount(stack, next.workflowId), 0, 'the next downgrade got no signal');
    await stack.individual.cancel(next.workflowId);
  });

  test('the answered page reads only the run its signed reference names: no state, forgery or expired one', async () => {
    const { workflowId, authorizationUrl } = await startDowngrade();
    const signer = new StateSigner(STATE_SECRET);
    const inAnHour = new Date(Date.now() + 3_600_000);
    const { runId } = await stack.env.client.workflow.getHandle(workflowId).describe();
    const claims = { workflowId, runId, prompt: 1, asked: 'person' } as const;
    const real = await signer.signAnswer(claims, inAnHour);
    const [header, , signature] = real.split('.');
    const otherPayload = Buffer.from(
      JSON.stringify({ ...claims, workflowId: 'downgrade-individual-acc_someone_else' }),
    ).toString('base64url');
    const refused: Array<[string, number]> = [
      [`answer=${new URL(authorizationUrl).searchParams.get('state')}`, 400],
      [`answer=${header}.${otherPayload}.${signature}`, 400],
      [
        `answer=${await new StateSigner('another-secret-that-is-long-enough-000000').signAnswer(claims, inAnHour)}`,
        400,
      ],
      [`answer=${await signer.signAnswer(claims, new Date(Date.now() - 1_000))}`, 410],
      [`answer=${real}&result=granted`, 400],
      ['result=granted', 400],
    ];
    for (const [query, status] of refused) {
      const page = await openAnsweredPage(`${stack.callbackUrl}/downgrade/answered?${query}`);
      assert.equal(page.status, status, query.slice(0, 40));
      assert.doesNotMatch(page.body, /checking|Free\/Busy|Read\/Write/);
    }
    const missing = await signer.signAnswer(
      { ...claims, workflowId: 'downgrade-individual-acc_missing', runId: NO_RUN.runId },
      inAnHour,
    );
    const gone = await openAnsweredPage(`${stack.callbackUrl}/downgrade/answered?answer=${missing}`);
    assert.equal(gone.status, 410);
    assert.match(gone.body, /<h1>This request has ended<\/h1>/);
    assert.equal(await signalCount(stack, workflowId), 0);
    await stack.individual.cancel(workflowId);
  });

  test('a valid state for a workflow that does not exist gets 410', async () => {
    const state = await new StateSigner(STATE_SECRET).sign(
      {
        ...NO_RUN,
        workflowId: 'downgrade-individual-acc_missing',
        purpose: 'individual_reauthorization',
        prompt: 1,
        nonce: StateSigner.newNonce(),
      },
      new Date(Date.now() + 60_000),
    );
    const response = await followRedirect(
      `${stack.callbackUrl}/oauth/callback?error=access_denied&state=${state}`,
    );
    assert.equal(response.status, 410);
  });
});

describe('Cronofy failures', () => {
  test('5xx and 429 on revoke and on the code exchange are retried to success', async () => {
    await got.post(`${stack.simulator.url}/_sim/faults`, {
      json: [
        { endpoint: 'revoke', status: 503, count: 2 },
        { endpoint: 'token', status: 429, retryAfterSeconds: 1, count: 1 },
        { endpoint: 'token', status: 500, count: 1 },
      ],
    });
    const revokesBefore = (await requestsTo('revoke')).length;
    const tokensBefore = (await requestsTo('token')).length;
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email }),
    );
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');
    const revokes = (await requestsTo('revoke')).slice(revokesBefore).map((entry) => entry.status);
    const tokens = (await requestsTo('token')).slice(tokensBefore).map((entry) => entry.status);
    assert.deepEqual(revokes, [503, 503, 200]);
    assert.deepEqual(tokens, [429, 500, 200]);
  });

  test('invalid_grant on the exchange fails the downgrade by name, without retrying', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email });
    // Someone else redeems the single-use code first.
    await stack.cronofy.requestAccessToken(location.searchParams.get('code')!, stack.redirectUri);
    const tokensBefore = (await requestsTo('token')).length;
    await followRedirect(location);
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'failed');
    assert.match(result.reason ?? '', /invalid_grant/);
    assert.equal((await requestsTo('token')).length - tokensBefore, 1, 'the used code was sent once');

    // The activity's failure is stored encoded: the server holds no error message, only an encrypted payload.
    const events = (await stack.env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const failures = events.flatMap((event) => event.activityTaskFailedEventAttributes?.failure ?? []);
    assert.ok(failures.length > 0, 'the exchange activity failed');
    for (const failure of failures) {
      assert.equal(failure.message, 'Encoded failure');
      assert.equal(failure.stackTrace ?? '', '');
    }
    const raw = await rawHistory(stack, workflowId);
    assert.equal(raw.includes(Buffer.from('invalid_grant')), false, 'the error is not in plaintext');
  });
});

describe('application webhook', () => {
  test('the downgrade ends whatever the webhook answers; a failed event arrives, in order, when redelivered', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    await waitUntil('the first event reaches the webhook', () =>
      stack.webhookEvents.some((event) => event.status.workflowId === workflowId),
    );
    stack.webhook.failFor(workflowId, Number.POSITIVE_INFINITY);
    await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email }),
    );
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed', 'decided while the endpoint refuses every event');

    // The 'finished' event runs through the whole (shortened) schedule, then waits for an operator.
    const failed = await waitUntil('an event is recorded as failed', async () => {
      const events = await stack.notifications.list({ stream: workflowId, status: 'failed' });
      return events.length > 0 && events;
    });
    assert.deepEqual(
      failed.map((event) => [event.eventType, event.attempts, event.lastError]),
      [['finished', TEST_RETRY_SCHEDULE_MS.length + 1, 'answered 503']],
    );
    const refusals = stack.webhook.answers.filter((answer) => answer.workflowId === workflowId).slice(1);
    assert.deepEqual(
      refusals.map((answer) => [answer.id, answer.status]),
      refusals.map(() => [failed[0]!.eventId, 503]),
      'every attempt carried the same webhook-id',
    );

    stack.webhook.failFor(workflowId, 0);
    assert.equal(await stack.notifications.redeliver({ stream: workflowId }), 1);
    await waitUntil(
      'both events reach the webhook',
      () => stack.webhookEvents.filter((event) => event.status.workflowId === workflowId).length >= 2,
    );
    const delivered = stack.webhookEvents.filter((event) => event.status.workflowId === workflowId);
    assert.deepEqual(
      delivered.map((event) => event.type),
      ['authorization_required', 'finished'],
    );
    assert.equal(delivered[1]!.id, failed[0]!.eventId);
    const events = (await stack.env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const signalled = events.findIndex((event) => event.workflowExecutionSignaledEventAttributes);
    assert.equal(
      events.slice(signalled).filter((event) => event.timerStartedEventAttributes).length,
      0,
      'after the callback no timer: no delivery, and no retry of one, is part of the run',
    );
  });
});

describe('an endpoint that answers 410', () => {
  test('is disabled: it receives nothing until an operator enables it, then the events recorded meanwhile, in order', async () => {
    stack.webhook.answer(410);
    try {
      const { user, workflowId, authorizationUrl } = await startDowngrade();
      await waitUntil('the endpoint is disabled', () =>
        stack.notifications.endpointDisabled(stack.webhook.url),
      );
      stack.webhook.answer(204);
      await followRedirect(
        await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email }),
      );
      assert.equal((await stack.individual.waitForResult(workflowId)).state, 'completed');
      // Ten of the dispatcher's polls: an endpoint it still delivered to would have had both events by now.
      await sleep(500);
      assert.deepEqual(
        stack.webhook.answers.filter((answer) => answer.workflowId === workflowId).map((a) => a.status),
        [410],
      );
      const held = await stack.notifications.list({ stream: workflowId });
      assert.deepEqual(
        held.map((event) => [event.eventType, event.status]),
        [
          ['authorization_required', 'pending'],
          ['finished', 'pending'],
        ],
      );

      assert.equal(await stack.notifications.enableEndpoint(stack.webhook.url), true);
      await waitUntil(
        'both events reach the webhook',
        () => stack.webhookEvents.filter((event) => event.status.workflowId === workflowId).length >= 2,
      );
      assert.deepEqual(
        stack.webhookEvents
          .filter((event) => event.status.workflowId === workflowId)
          .map((event) => [event.id, event.type]),
        held.map((event) => [event.eventId, event.eventType]),
      );
    } finally {
      stack.webhook.answer(204);
      await stack.notifications.enableEndpoint(stack.webhook.url);
    }
  });
});

describe("the service's link to the current consent request", () => {
  test('opened after the request expired, it asks afresh (a prompt more) and completes; opened after the end, it starts nothing', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade({ consentRequestLifetimeMs: 1_000 });
    const waiting = await stack.individual.get(workflowId);
    assert.ok(waiting.link, 'the status holds the service link');
    assert.equal(waiting.prompt, 1);
    const link = waiting.link;
    assert.equal(new URL(link).pathname, '/downgrade/link');

    // Once the request's state has expired, Cronofy's URL leads nowhere: its callback is refused.
    while (Date.now() < Date.parse(waiting.authorizationExpiresAt!) + 1_000) await sleep(100);
    const stale = await followRedirect(
      await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email }),
    );
    assert.equal(stale.status, 410);
    assert.equal((await stack.individual.get(workflowId)).state, 'awaiting_reauthorization');

    // The service's link still works: it asks afresh.
    const opened = await got(link, { followRedirect: false, throwHttpErrors: false });
    assert.equal(opened.statusCode, 303);
    const fresh = opened.headers.location!;
    assert.notEqual(fresh, authorizationUrl);
    const renewed = await stack.individual.get(workflowId);
    assert.equal(renewed.prompt, 2, 'a prompt more');
    assert.equal(renewed.authorizationUrl, fresh);
    assert.equal(renewed.deadline, waiting.deadline, 'under the same deadline');
    const page = await followRedirect(
      await decideOnConsentPage(fresh, 'free_busy_google', { email: user.email }),
    );
    assert.equal(page.status, 303);
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');

    const before = (await stack.env.client.workflow.getHandle(workflowId).fetchHistory()).events?.length;
    const after = await got(link, { followRedirect: false, throwHttpErrors: false });
    assert.equal(after.statusCode, 200);
    assert.match(after.body, /All done/);
    const history = (await stack.env.client.workflow.getHandle(workflowId).fetchHistory()).events?.length;
    assert.equal(history, before, 'nothing was sent to the ended run');
  });

  test('opened while the request works, it sends the person there; a forged link is refused', async () => {
    const { workflowId, authorizationUrl } = await startDowngrade({ deadlineMs: 600_000 });
    const { link } = await stack.individual.get(workflowId);
    const opened = await got(link!, { followRedirect: false, throwHttpErrors: false });
    assert.equal(opened.statusCode, 303);
    assert.equal(opened.headers.location, authorizationUrl);
    assert.equal((await stack.individual.get(workflowId)).prompt, 1);
    const forged = new URL(link!);
    forged.searchParams.set('state', `${forged.searchParams.get('state')}x`);
    const refused = await got(forged, { followRedirect: false, throwHttpErrors: false });
    assert.equal(refused.statusCode, 400);
    await stack.individual.cancel(workflowId);
    await stack.individual.waitForResult(workflowId);
    const ended = await got(link!, { followRedirect: false, throwHttpErrors: false });
    assert.equal(ended.statusCode, 410);
    assert.match(ended.body, /cancelled/);
  });
});

describe('durability', () => {
  test('a worker stopped during the wait and started again completes the downgrade', async () => {
    const { user, workflowId, authorizationUrl } = await startDowngrade();
    await worker.stop();
    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', { email: user.email });
    const callback = await followRedirect(location);
    assert.equal(callback.status, 303, 'the signal is accepted with no worker running');
    // No worker, no verdict, however long a page waits: a page that waits briefly says it is still being checked.
    const briefly = await startCallbackServer(
      temporalCallbackDeps(stack.env.client, stack.store, new StateSigner(STATE_SECRET)),
      { host: '127.0.0.1', port: 0, logLevel: 'silent', verdictWaitMs: 200 },
    );
    try {
      const page = await openAnsweredPage(
        new URL(callback.location!.search, `${briefly.url}/downgrade/answered`),
      );
      assert.equal(page.status, 200);
      assert.match(page.body, /<h1>We are still checking your answer<\/h1>/);
      assert.match(page.body, /you will hear from us/);
    } finally {
      await briefly.app.close();
    }
    worker = await stack.startWorker();
    const result = await stack.individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed');
    // The same page, loaded again once there is a verdict, tells it.
    assert.match(
      (await openAnsweredPage(callback.location!)).body,
      /<h1>Your calendar is connected with Free\/Busy<\/h1>/,
    );
  });
});

describe('histories', () => {
  test('no history holds a token or a code the simulator issued, an email or a sub in JSON', async () => {
    // Every run on the server: the ones above, and any later run of theirs.
    await assertEveryHistoryHoldsNoSecrets(stack, { plaintexts: emails, atLeast: workflowIds.length });
  });

  test('a history fetched raw holds encrypted payloads, while the client decodes the result', async () => {
    const workflowId = workflowIds[0]!;
    const handle = stack.env.client.workflow.getHandle(workflowId);
    const result = DowngradeResultShape.parse(await handle.result());
    assert.equal(result.state, 'completed');

    const raw = await rawHistory(stack, workflowId);
    assert.ok(raw.includes(Buffer.from(ENCRYPTED_ENCODING)));
    assert.equal(raw.includes(Buffer.from('"state":')), false, 'the result is not in plaintext');
    const events = (await handle.fetchHistory()).events ?? [];
    const [stored] = events.flatMap(
      (event) => event.workflowExecutionCompletedEventAttributes?.result?.payloads ?? [],
    );
    assert.ok(stored, 'the run completed with a result');
    assert.equal(Buffer.from(stored.metadata?.encoding ?? []).toString(), ENCRYPTED_ENCODING);
    const [decoded] = await stack.codec.decode([stored]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(decoded!), result);
  });

  test('every history of this run replays against the current workflow code', async () => {
    const histories = await recordHistories(stack, workflowIds);
    await replayHistories(histories);
  });
});

async function historyOf(workflowId: string) {
  return (await stack.env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
}

/** The link the answered page offers, if any. */
function linkOn(html: string): string | undefined {
  const href = /<a href="([^"]+)">/.exec(html)?.[1];
  return href === undefined ? undefined : unescapeHtml(href);
}

async function waitUntilPrompt(workflowId: string, prompt: number) {
  return waitUntil(`${workflowId} reaches prompt ${prompt}`, async () => {
    const status = await stack.individual.get(workflowId);
    return status.prompt === prompt && status.authorizationUrl ? status : undefined;
  });
}
