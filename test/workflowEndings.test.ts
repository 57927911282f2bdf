/**
 * Every way a re-authorization ends, for a person (an Individual downgrade), for a domain's administrator (an
 * Enterprise downgrade) and for each user of a domain, one test each, decided by the workflow code alone: a real Temporal dev server runs the
 * workflow, and its activities are stubs scripted per test. No HTTP, no simulator, no database: the callback
 * arrives as the signal the callback server would send.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Context, ApplicationFailure } from '@temporalio/activity';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { startTemporalServer } from '../harness/temporalServer.js';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { testWorkflowBundle } from '../harness/workflowBundle.js';
import { waitUntil } from '../harness/waitUntil.js';
import {
  cronofyTaskQueue,
  getStatus,
  openLink,
  reauthorizationCallback,
  type ApplicationEvent,
  type DowngradeResult,
  type IndividualDowngradeInput,
  type ReauthorizationCallback,
} from '../src/workflows/definitions.js';
import type { ExchangedGrant } from '../src/activities/deps.js';
import {
  getEnterpriseStatus,
  userAccessCallback,
  type DomainEvent,
  type EnterpriseDowngradeInput,
  type EnterpriseStatus,
  type EnterpriseUserInput,
  type EnterpriseUserResult,
  type UserAccessCallback,
} from '../src/workflows/enterpriseDefinitions.js';
import { verdictOn, type AskedStatus, type Verdict } from '../src/callbacks/verdict.js';

/** What one downgrade's Cronofy does: the grant each exchange returns, in order, and whether revoking fails. */
interface Script {
  grants: Array<Partial<ExchangedGrant> & { domain?: string; delegatedScope?: string }>;
  revokeFails?: boolean;
  /** Prompts whose code an earlier attempt used up before it could record the tokens (a crash). */
  lostCodes?: number[];
}

/** What the stubs saw of one downgrade. */
interface Seen {
  revoked: string[];
  events: Array<ApplicationEvent | DomainEvent>;
  /** An Enterprise user's own access requests: its number, and the run it names for the callback. */
  requests: Array<{ request: number; runId: string; firstRunId: string }>;
  /** The outcome an Enterprise user recorded for its domain to count. */
  recorded?: { state: string; reason?: string; credentialRef?: string };
}

const SUB = 'acc_person';
const SERVICE_ACCOUNT = 'ser_domain';
const DOMAIN = 'example.org';
const FREE_BUSY: Partial<ExchangedGrant> = {
  providerName: 'google_free_busy',
  providerService: 'google_free_busy',
};
const READ_WRITE: Partial<ExchangedGrant> = { providerName: 'google', providerService: 'google' };

const scripts = new Map<string, Script>();
const seen = new Map<string, Seen>();
const workflowId = () => Context.current().info.workflowExecution?.workflowId ?? '';
const seenBy = (id: string): Seen => {
  if (!seen.has(id)) seen.set(id, { revoked: [], events: [], requests: [] });
  return seen.get(id)!;
};

/** The grant the script gives for a prompt's code (`code-N`). */
function scriptedGrant(codeRef: string) {
  const prompt = Number(codeRef.split('-').pop());
  if (scripts.get(workflowId())?.lostCodes?.includes(prompt)) {
    throw ApplicationFailure.nonRetryable('the code was used by an earlier attempt', 'AuthorizationCodeLost');
  }
  const grant = scripts.get(workflowId())?.grants[prompt - 1] ?? {};
  return { credentialRef: `grant-${prompt}`, providerName: 'google', ...grant };
}

/** The activities the downgrades call, as stubs that follow the test's script. */
const stubs = {
  async revokeAuthorization(target: { credentialRef: string } | { sub: string }): Promise<void> {
    if (scripts.get(workflowId())?.revokeFails) {
      throw ApplicationFailure.nonRetryable('the authorization is unknown', 'CronofyGrantError');
    }
    seenBy(workflowId()).revoked.push('sub' in target ? target.sub : target.credentialRef);
  },
  async createAuthorizationRequest(request: { workflowId: string; prompt: number }) {
    return { authorizationUrl: `https://consent.test/${request.prompt}`, nonce: `nonce-${request.prompt}` };
  },
  async createOpenLink(request: { workflowId: string }) {
    return { url: `https://service.test/open/${request.workflowId}`, nonce: 'open-nonce' };
  },
  async exchangeAuthorizationCode(request: { codeRef: string }): Promise<ExchangedGrant> {
    return { sub: SUB, ...scriptedGrant(request.codeRef) };
  },
  async notifyApplication(event: ApplicationEvent | DomainEvent): Promise<void> {
    seenBy(workflowId()).events.push(event);
  },
  // A domain's, with no users: its downgrade ends when the administrator's re-authorization does.
  async captureUsers(): Promise<{ captureId: string; userCount: number }> {
    return { captureId: 'capture', userCount: 0 };
  },
  async createEnterpriseAuthorizationRequest(request: { prompt: number }) {
    return { authorizationUrl: `https://consent.test/${request.prompt}`, nonce: `nonce-${request.prompt}` };
  },
  async exchangeServiceAccountCode(request: { codeRef: string }) {
    return { sub: SERVICE_ACCOUNT, domain: DOMAIN, ...scriptedGrant(request.codeRef) };
  },
  // An Enterprise user's: asking again for its own access, the code of the request answered, its outcome.
  async requestUserAccess(request: {
    users: Array<{ request: number; runId: string; firstRunId: string }>;
  }): Promise<void> {
    for (const { request: number, runId, firstRunId } of request.users)
      seenBy(workflowId()).requests.push({ request: number, runId, firstRunId });
  },
  async exchangeUserAccessCode(request: { codeRef: string }): Promise<ExchangedGrant> {
    return { sub: 'acc_user', ...scriptedGrant(request.codeRef) };
  },
  async recordUserOutcome(request: { state: string; reason?: string; credentialRef?: string }) {
    const { state, reason, credentialRef } = request;
    seenBy(workflowId()).recorded = { state, reason, credentialRef };
  },
};

let env: TestWorkflowEnvironment;
let workers: Worker[];
let running: Promise<void[]>;
const taskQueue = `endings-${Date.now()}`;

before(async () => {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  env = await startTemporalServer();
  const workflowBundle = await testWorkflowBundle();
  workers = await Promise.all(
    [taskQueue, cronofyTaskQueue(taskQueue)].map((queue) =>
      Worker.create({
        connection: env.nativeConnection,
        taskQueue: queue,
        workflowBundle,
        activities: stubs,
      }),
    ),
  );
  running = Promise.all(workers.map((worker) => worker.run()));
});

after(async () => {
  for (const worker of workers ?? []) worker.shutdown();
  await running;
  await env?.teardown();
});

let count = 0;

const asking = { deadlineMs: 60_000, reminderIntervalMs: 60_000, maxPrompts: 3 };

/** The two kinds of run: the workflow, and the input every test starts from. */
const kinds = {
  person: { workflowType: 'individualDowngrade', input: { sub: SUB, ...asking } },
  user: {
    workflowType: 'enterpriseUserDowngrade',
    input: {
      domain: DOMAIN,
      captureId: 'capture',
      email: 'someone@example.org',
      position: 0,
      parentWorkflowId: 'the-domain',
      serviceAccountRef: 'service-account',
      userDeadlineMs: 60_000,
      maxUserRequests: 2,
    },
  },
  domain: {
    workflowType: 'enterpriseDowngrade',
    input: {
      domain: DOMAIN,
      inlineUsers: [],
      serviceAccountSub: SERVICE_ACCOUNT,
      userDeadlineMs: 60_000,
      maxUserRequests: 1,
      window: 10,
      ...asking,
    },
  },
};

/** Starts a run of `kind` that follows `script`; its workflow id starts with the kind. */
async function startRun(kind: keyof typeof kinds, script: Script, input: object) {
  const id = `${kind}-${++count}`;
  scripts.set(id, script);
  const { workflowType, input: defaults } = kinds[kind];
  const handle = await env.client.workflow.start(workflowType, {
    workflowId: id,
    taskQueue,
    args: [{ ...defaults, ...input }],
  });
  return { handle, seen: seenBy(id) };
}

/** A person's downgrade. */
const start = (script: Script, input: Partial<IndividualDowngradeInput> = {}) =>
  startRun('person', script, input);
/** A domain's downgrade, of no users. */
const startDomain = (script: Script, input: Partial<EnterpriseDowngradeInput> = {}) =>
  startRun('domain', script, input);

type Handle = WorkflowHandle;

/** The status of either downgrade: the person's state or the domain's phase, and the prompt. */
async function statusOf(handle: Handle): Promise<{ state: string; prompt: number }> {
  if (handle.workflowId.startsWith('person-')) return handle.query(getStatus);
  const status = await handle.query(getEnterpriseStatus);
  return { state: status.phase, prompt: status.prompt };
}

/** Waits until the downgrade's status passes `until`. */
async function waitFor(
  handle: Handle,
  until: (status: { state: string; prompt: number }) => boolean,
): Promise<void> {
  await waitUntil(`the downgrade gets there: ${until.toString()}`, async () => until(await statusOf(handle)));
}

/** Once prompt `prompt` waits, the person answers it: with a code, or with Cronofy's error redirect. */
async function answer(handle: Handle, prompt: number, error?: string): Promise<void> {
  await waitFor(handle, (status) => status.prompt >= prompt);
  const callback: ReauthorizationCallback = error
    ? { prompt, nonce: `nonce-${prompt}`, error }
    : { prompt, nonce: `nonce-${prompt}`, codeRef: `code-${prompt}` };
  await handle.signal(reauthorizationCallback, callback);
}

async function result(handle: Handle): Promise<DowngradeResult> {
  return (await handle.result()) as DowngradeResult;
}

async function domainResult(handle: Handle): Promise<EnterpriseStatus> {
  return (await handle.result()) as EnterpriseStatus;
}

describe('an Individual downgrade ends', () => {
  test('completed: the person grants Free/Busy to their own account', async () => {
    const { handle, seen } = await start({ grants: [FREE_BUSY] });
    await answer(handle, 1);
    const ended = await result(handle);
    assert.equal(ended.state, 'completed');
    assert.equal(ended.credentialRef, 'grant-1');
    assert.equal(ended.providerName, 'google_free_busy');
    assert.deepEqual(seen.revoked, [SUB], 'only the Read/Write connection was revoked');
    assert.deepEqual(
      (seen.events as ApplicationEvent[]).map((event) => [event.type, event.status.state]),
      [
        ['authorization_required', 'awaiting_reauthorization'],
        ['finished', 'completed'],
      ],
    );
  });

  test('asked again: the code was used up by an attempt that crashed before recording its tokens', async () => {
    const { handle } = await start({ grants: [FREE_BUSY, FREE_BUSY], lostCodes: [1] });
    await answer(handle, 1);
    await answer(handle, 2);
    const ended = await result(handle);
    assert.equal(ended.state, 'completed');
    assert.equal(ended.prompt, 2);
  });

  test('failed: the code was lost on the last prompt', async () => {
    const { handle } = await start({ grants: [FREE_BUSY], lostCodes: [1] }, { maxPrompts: 1 });
    await answer(handle, 1);
    const ended = await result(handle);
    assert.equal(ended.state, 'failed');
    assert.match(ended.reason ?? '', /authorization code was lost/);
  });

  test('denied: the person chose Deny on the consent page', async () => {
    const { handle } = await start({ grants: [] });
    await answer(handle, 1, 'access_denied');
    assert.equal((await result(handle)).state, 'denied');
  });

  test('failed: Cronofy redirected with another error', async () => {
    const { handle } = await start({ grants: [] });
    await answer(handle, 1, 'server_error');
    const ended = await result(handle);
    assert.equal(ended.state, 'failed');
    assert.match(ended.reason ?? '', /server_error/);
  });

  test('failed: a Cronofy call was refused for good (revoking an unknown authorization)', async () => {
    const { handle, seen } = await start({ grants: [], revokeFails: true });
    const ended = await result(handle);
    assert.equal(ended.state, 'failed');
    assert.match(ended.reason ?? '', /revokeAuthorization/);
    assert.deepEqual(seen.revoked, []);
  });

  test('expired: nobody answers before the deadline, and the application was reminded meanwhile', async () => {
    const { handle, seen } = await start({ grants: [] }, { deadlineMs: 1_500, reminderIntervalMs: 500 });
    const ended = await result(handle);
    assert.equal(ended.state, 'expired');
    const reminders = seen.events.filter((event) => event.type === 'reminder');
    assert.ok(reminders.length >= 1, `${reminders.length} reminders`);
    assert.equal(ended.remindersSent, reminders.length);
  });

  test('read_write_kept: Read/Write chosen on every prompt, each grant taken back', async () => {
    const { handle, seen } = await start({ grants: [READ_WRITE, READ_WRITE] }, { maxPrompts: 2 });
    await answer(handle, 1);
    await answer(handle, 2);
    const ended = await result(handle);
    assert.equal(ended.state, 'read_write_kept');
    assert.deepEqual(seen.revoked, [SUB, 'grant-1', 'grant-2']);
  });

  test('no_access: the person chose No Access, which is taken back', async () => {
    const { handle, seen } = await start({
      grants: [{ providerName: 'cronofy', providerService: 'cronofy' }],
    });
    await answer(handle, 1);
    assert.equal((await result(handle)).state, 'no_access');
    assert.deepEqual(seen.revoked, [SUB, 'grant-1']);
  });

  test('other_account: another calendar account was authorized, and is taken back', async () => {
    const { handle, seen } = await start({ grants: [{ ...FREE_BUSY, sub: 'acc_someone_else' }] });
    await answer(handle, 1);
    assert.equal((await result(handle)).state, 'other_account');
    assert.deepEqual(seen.revoked, [SUB, 'grant-1']);
  });

  test('completed on the second prompt: a grant whose provider fields disagree is not Free/Busy', async () => {
    const { handle, seen } = await start({
      grants: [{ providerName: 'google_free_busy', providerService: 'google' }, FREE_BUSY],
    });
    await answer(handle, 1);
    await answer(handle, 2);
    const ended = await result(handle);
    assert.deepEqual([ended.state, ended.prompt, ended.credentialRef], ['completed', 2, 'grant-2']);
    assert.deepEqual(seen.revoked, [SUB, 'grant-1']);
  });

  test('a callback for another prompt or with another nonce is ignored', async () => {
    const { handle } = await start({ grants: [FREE_BUSY] });
    await waitFor(handle, (status) => status.prompt === 1);
    await handle.signal(reauthorizationCallback, { prompt: 2, nonce: 'nonce-2', codeRef: 'code-2' });
    await handle.signal(reauthorizationCallback, { prompt: 1, nonce: 'forged', codeRef: 'code-1' });
    assert.equal((await statusOf(handle)).state, 'awaiting_reauthorization');
    await answer(handle, 1);
    assert.equal((await result(handle)).state, 'completed');
  });

  test('link_not_opened: with revokeWhenOpened, a link never opened revokes nothing', async () => {
    const { handle, seen } = await start({ grants: [] }, { revokeWhenOpened: true, deadlineMs: 1_000 });
    const ended = await result(handle);
    assert.equal(ended.state, 'link_not_opened');
    assert.deepEqual(seen.revoked, []);
  });

  test('completed after the link is opened: revoked only then, and the update answers the consent page', async () => {
    const { handle, seen } = await start({ grants: [FREE_BUSY] }, { revokeWhenOpened: true });
    await waitFor(handle, (status) => status.state === 'awaiting_link_open');
    assert.deepEqual(seen.revoked, []);
    const opened = await handle.executeUpdate(openLink, { args: [{ nonce: 'open-nonce' }] });
    assert.equal(opened.authorizationUrl, 'https://consent.test/1');
    assert.deepEqual(seen.revoked, [SUB]);
    await answer(handle, 1);
    assert.equal((await result(handle)).state, 'completed');
  });

  test('cancelled: cancelled while waiting, and the application is told', async () => {
    const { handle, seen } = await start({ grants: [] });
    await waitFor(handle, (status) => status.prompt === 1);
    await handle.cancel();
    await assert.rejects(handle.result(), WorkflowFailedError);
    const finished = (seen.events as ApplicationEvent[]).find((event) => event.type === 'finished');
    assert.equal(finished?.status.state, 'cancelled');
  });
});

describe("an Enterprise downgrade's re-authorization by the administrator ends", () => {
  test('completed: a Free/Busy service account of this domain (and, with no users, the domain is done)', async () => {
    const { handle, seen } = await startDomain({ grants: [{ providerName: 'google_free_busy' }] });
    await answer(handle, 1);
    const ended = await domainResult(handle);
    assert.deepEqual([ended.phase, ended.providerName], ['completed', 'google_free_busy']);
    assert.deepEqual(seen.revoked, [SERVICE_ACCOUNT]);
  });

  test('denied: the administrator chose Deny', async () => {
    const { handle } = await startDomain({ grants: [] });
    await answer(handle, 1, 'access_denied');
    assert.equal((await domainResult(handle)).phase, 'denied');
  });

  test('other_account: a service account of another domain, which is taken back', async () => {
    const { handle, seen } = await startDomain({
      grants: [{ providerName: 'google_free_busy', domain: 'elsewhere.example.com' }],
    });
    await answer(handle, 1);
    const ended = await domainResult(handle);
    assert.equal(ended.phase, 'other_account');
    assert.match(ended.reason ?? '', /different calendar account/);
    assert.deepEqual(seen.revoked, [SERVICE_ACCOUNT, 'grant-1']);
  });

  test('no_access: a grant reporting No Access ends the domain, and is taken back', async () => {
    const { handle, seen } = await startDomain({ grants: [{ providerName: 'cronofy' }] });
    await answer(handle, 1);
    assert.equal((await domainResult(handle)).phase, 'no_access');
    assert.deepEqual(seen.revoked, [SERVICE_ACCOUNT, 'grant-1']);
  });

  test('read_write_kept: Read/Write on every prompt, each grant taken back', async () => {
    const { handle, seen } = await startDomain({ grants: [READ_WRITE, READ_WRITE] }, { maxPrompts: 2 });
    await answer(handle, 1);
    await answer(handle, 2);
    assert.equal((await domainResult(handle)).phase, 'read_write_kept');
    assert.deepEqual(seen.revoked, [SERVICE_ACCOUNT, 'grant-1', 'grant-2']);
  });

  test('completed on the second prompt: a service account that may not delegate free_busy_write is taken back', async () => {
    const { handle, seen } = await startDomain({
      grants: [
        { providerName: 'google_free_busy', delegatedScope: 'read_events' },
        { providerName: 'google_free_busy', delegatedScope: 'read_events free_busy_write' },
      ],
    });
    await answer(handle, 1);
    await answer(handle, 2);
    const ended = await domainResult(handle);
    assert.deepEqual([ended.phase, ended.prompt], ['completed', 2]);
    assert.deepEqual(seen.revoked, [SERVICE_ACCOUNT, 'grant-1']);
  });

  test("expired: the application's webhook is told the link and reminded, as for a person", async () => {
    const { handle, seen } = await startDomain(
      { grants: [] },
      { deadlineMs: 1_500, reminderIntervalMs: 500 },
    );
    assert.equal((await domainResult(handle)).phase, 'expired');
    const [required, ...reminders] = seen.events as DomainEvent[];
    assert.equal(required?.type, 'authorization_required');
    assert.equal(required?.status.phase, 'awaiting_admin');
    assert.equal(required?.status.authorizationUrl, 'https://consent.test/1');
    assert.ok(reminders.length >= 1, `${reminders.length} reminders`);
    assert.ok(reminders.every((event) => event.type === 'reminder' && event.status.domain === DOMAIN));
  });
});

describe("an Enterprise Connect user's downgrade ends", () => {
  /** An Enterprise user of the domain, whose access the domain has asked for once. */
  const startUser = (script: Script, input: Partial<EnterpriseUserInput> = {}) =>
    startRun('user', script, input);
  /** Cronofy's callback to the user's access request `request`: a code, or an error. */
  const callback = (request: number, error?: string): UserAccessCallback => ({
    request,
    redirectUri: 'https://service.test/callbacks/enterprise-user',
    ...(error ? { error } : { codeRef: `code-${request}` }),
  });
  const userResult = async (handle: Handle) => (await handle.result()) as EnterpriseUserResult;

  test('completed: a Free/Busy grant, whose credential is recorded for the domain', async () => {
    const { handle, seen } = await startUser({ grants: [FREE_BUSY] });
    await handle.signal(userAccessCallback, callback(1));
    assert.equal((await userResult(handle)).state, 'completed');
    assert.deepEqual(seen.recorded, { state: 'completed', reason: undefined, credentialRef: 'grant-1' });
    assert.deepEqual(seen.requests, [], 'asked only by the domain');
  });

  test("failed: Cronofy's callback carries an error, recorded as the reason", async () => {
    const { handle, seen } = await startUser({ grants: [] });
    await handle.signal(userAccessCallback, callback(1, 'unable_to_grant_scope'));
    assert.deepEqual(await userResult(handle), {
      position: 0,
      state: 'failed',
      reason: 'unable_to_grant_scope',
    });
    assert.equal(seen.recorded?.state, 'failed');
  });

  test('failed: access granted Read/Write, which is taken back', async () => {
    const { handle, seen } = await startUser({ grants: [READ_WRITE] });
    await handle.signal(userAccessCallback, callback(1));
    const ended = await userResult(handle);
    assert.equal(ended.state, 'failed');
    assert.match(ended.reason ?? '', /granted as google, not Free\/Busy/);
    assert.deepEqual(seen.revoked, ['grant-1']);
    assert.equal(seen.recorded?.credentialRef, undefined);
  });

  test('expired: no callback to any request; the user asked again once itself, naming its own run', async () => {
    // Nothing ever answers, so the deadline decides nothing but how soon the test ends.
    const { handle, seen } = await startUser({ grants: [] }, { userDeadlineMs: 200 });
    assert.deepEqual(await userResult(handle), {
      position: 0,
      state: 'expired',
      reason: 'no access after 2 requests',
    });
    const { runId } = await handle.describe();
    assert.deepEqual(seen.requests, [{ request: 2, runId, firstRunId: runId }]);
    assert.equal(seen.recorded?.state, 'expired');
  });

  test('completed after asking again: the code was used up by an attempt that crashed before recording it', async () => {
    const { handle, seen } = await startUser({ grants: [FREE_BUSY, FREE_BUSY], lostCodes: [1] });
    await handle.signal(userAccessCallback, callback(1));
    await waitUntil('the user asks again', () => seen.requests.length === 1);
    // An answer to the first request, arriving late, no longer counts.
    await handle.signal(userAccessCallback, callback(1));
    await handle.signal(userAccessCallback, callback(2));
    assert.equal((await userResult(handle)).state, 'completed');
    assert.equal(seen.recorded?.credentialRef, 'grant-2');
  });
});

describe('the page after consent reads the verdict on an answer from the status', () => {
  /** What the page reads: the status of the run, as the callback server queries it. */
  async function askedStatus(handle: Handle): Promise<AskedStatus> {
    return handle.workflowId.startsWith('person-')
      ? { asked: 'person', status: await handle.query(getStatus) }
      : { asked: 'administrator', status: await handle.query(getEnterpriseStatus) };
  }

  /** The verdict on the answer to `prompt`, once the run has judged it. */
  async function judged(handle: Handle, prompt: number): Promise<Verdict> {
    return waitUntil(`prompt ${prompt} is judged`, async () => {
      const verdict = verdictOn({ prompt }, await askedStatus(handle));
      return verdict.outcome !== 'checking' && verdict;
    });
  }

  for (const [kind, freeBusy] of [
    ['person', FREE_BUSY],
    ['domain', { providerName: 'google_free_busy' }],
  ] as const) {
    test(`${kind}: Read/Write is asked again with the next prompt's link, then Free/Busy is confirmed`, async () => {
      const { handle } = await startRun(kind, { grants: [READ_WRITE, freeBusy] }, {});
      await answer(handle, 1);
      assert.deepEqual(await judged(handle, 1), {
        outcome: 'asked_again',
        authorizationUrl: 'https://consent.test/2',
      });
      await answer(handle, 2);
      await handle.result();
      assert.deepEqual(await judged(handle, 2), { outcome: 'confirmed' });
      // The first answer's page, loaded again: still Read/Write, with no link once nothing waits.
      assert.deepEqual(await judged(handle, 1), { outcome: 'asked_again', authorizationUrl: undefined });
    });
  }
});
