/**
 * What an operator sees in the real Temporal UI: the dev server's embedded UI (`--ui-port`, `--ui-codec-endpoint`)
 * opened in headless Chromium, pointed at the project's codec server as `npm start` does in development. Runs are
 * found by the operators' list filters on our search attributes, and their input, result, summary, details,
 * current details and status query read decoded, although Temporal only holds `binary/encrypted` payloads. A codec
 * server that does not trust the UI's origin (production) leaves the same page encrypted.
 *
 * Needs Chromium (Debian's `chromium` package, or CHROMIUM_PATH); `npm test` installs it through
 * scripts/prepare-tests.sh. Without it these tests fail — they never skip.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import { launchChromium, missingChromium, SCREENSHOTS } from '../harness/chromium.js';
import { startCodecServer, type RunningCodecServer } from '../src/codec/codecServer.js';
import { startDevServer, type DevServer } from '../src/temporalDevServer.js';
import type { EnterpriseStatus } from '../src/workflows/enterpriseDefinitions.js';
import type { DowngradeStatus } from '../src/workflows/definitions.js';
import { freePorts } from '../harness/ports.js';
import {
  approveAsAdministrator,
  createDomain,
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  startStack,
  testPayloadEncryption,
  waitForState,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { assertEveryHistoryHoldsNoSecrets } from '../harness/histories.js';
import { waitUntil } from '../harness/waitUntil.js';
import {
  domainUsersQuery,
  USERS_LINK_TEXT,
  workflowLink,
  workflowListLink,
} from '../src/contracts/temporalUiLinks.js';

const TEST_TIMEOUT_MS = 45_000;
/** The UI is a single-page app that loads its bundle, then the run, then asks the codec server. */
const UI_TIMEOUT_MS = 20_000;
/** Runs waiting on a person stay waiting for the whole file. */
const DEADLINE_MS = 10 * 60_000;
const CODEC_TOKEN = 'temporal-ui-test-codec-token-0123456789';
const ENTERPRISE_DOMAIN = 'ui.example.org';
const ENTERPRISE_USERS = ['ada@ui.example.org', 'grace@ui.example.org', 'linus@ui.example.org'];
const CODEC_FAILED_BANNER = 'Codec Server could not connect';

interface Runs {
  /** Waiting for the person to authorize again. */
  waiting: { sub: string; userId: string; workflowId: string; runId: string; status: DowngradeStatus };
  /** Finished: the person chose Free/Busy. */
  completed: { sub: string; workflowId: string; runId: string };
  /** Waiting for the domain's administrator. */
  enterprise: { workflowId: string; runId: string; serviceAccountSub: string; status: EnterpriseStatus };
}

const chromiumError = missingChromium();
let browser: Browser | undefined;
let codecServer: RunningCodecServer | undefined;
let codecPort = 0;
let uiOrigin = '';
let devServer: DevServer | undefined;
let stack: Stack | undefined;
let worker: RunningWorker | undefined;
let runs: Runs | undefined;

/** Everything started; each test calls it first, so a missing Chromium fails every test (never skips one). */
function ready(): { stack: Stack; runs: Runs } {
  if (chromiumError) throw chromiumError;
  assert.ok(browser && devServer && stack && runs, 'the browser, the stack or the runs did not start');
  return { stack, runs };
}

/** The codec server as `npm start` runs it; `trustAllowedOrigin: false` is how production runs it. */
function startTestCodecServer(trustAllowedOrigin: boolean): Promise<RunningCodecServer> {
  return startCodecServer({
    codec: testPayloadEncryption().codec,
    token: CODEC_TOKEN,
    allowedOrigin: uiOrigin,
    trustAllowedOrigin,
    host: '127.0.0.1',
    port: codecPort,
    logLevel: 'silent',
  });
}

before(async () => {
  if (chromiumError) return;
  browser = await launchChromium();
  const [temporalPort, uiPort, chosenCodecPort] = await freePorts(3);
  assert.ok(temporalPort && uiPort && chosenCodecPort);
  codecPort = chosenCodecPort;
  // The browser's origin must be exactly this one, so the UI is always opened on 127.0.0.1 (not localhost).
  uiOrigin = `http://127.0.0.1:${uiPort}`;
  codecServer = await startTestCodecServer(true);
  devServer = await startDevServer({
    port: temporalPort,
    uiPort,
    uiCodecEndpoint: codecServer.url,
    // At `warn` the server logs every history page the UI asks for.
    logLevel: 'error',
  });
  assert.equal(devServer.uiUrl, uiOrigin);
  stack = await startStack({ temporalAddress: devServer.address, temporalUiUrl: uiOrigin });
  worker = await stack.startWorker();
  const [waiting, completed, enterprise] = await Promise.all([
    startWaitingDowngrade(stack),
    completeDowngrade(stack),
    startEnterpriseAwaitingAdmin(stack),
  ]);
  runs = { waiting, completed, enterprise };
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await stack?.stop();
  await devServer?.stop();
  await codecServer?.close();
});

async function startWaitingDowngrade(s: Stack): Promise<Runs['waiting']> {
  const user = await createReadWriteUser(s, 'ui-waiting@example.com');
  const userId = 'ui-user-waiting';
  const { workflowId, runId } = await s.individual.start({
    sub: user.sub,
    userId,
    refreshToken: user.refresh_token,
    deadlineMs: DEADLINE_MS,
  });
  const status = await waitForState(s, workflowId, (state) => state === 'awaiting_reauthorization');
  return { sub: user.sub, userId, workflowId, runId, status };
}

async function completeDowngrade(s: Stack): Promise<Runs['completed']> {
  const user = await createReadWriteUser(s, 'ui-completed@example.com');
  const { workflowId, runId } = await s.individual.start({
    sub: user.sub,
    userId: 'ui-user-completed',
    refreshToken: user.refresh_token,
    deadlineMs: DEADLINE_MS,
  });
  const status = await waitForState(s, workflowId, (state) => state === 'awaiting_reauthorization');
  assert.ok(status.authorizationUrl);
  const location = await decideOnConsentPage(status.authorizationUrl, 'free_busy_google', {
    email: user.email,
  });
  assert.equal((await followRedirect(location)).status, 303);
  assert.equal((await s.individual.waitForResult(workflowId)).state, 'completed');
  return { sub: user.sub, workflowId, runId };
}

async function startEnterpriseAwaitingAdmin(s: Stack): Promise<Runs['enterprise']> {
  const serviceAccount = await createDomain(s, ENTERPRISE_DOMAIN, ENTERPRISE_USERS);
  const { workflowId, runId } = await s.enterprise.start({
    domain: ENTERPRISE_DOMAIN,
    requireApproval: false,
    users: [ENTERPRISE_USERS],
    serviceAccountRefreshToken: serviceAccount.refresh_token,
    serviceAccountSub: serviceAccount.service_account_id,
    deadlineMs: DEADLINE_MS,
  });
  const status = await waitUntil(`${workflowId} asks for its administrator's consent`, async () => {
    const current = await s.enterprise.get(ENTERPRISE_DOMAIN);
    return current.phase === 'awaiting_admin' && current.authorizationUrl ? current : undefined;
  });
  return { workflowId, runId, serviceAccountSub: serviceAccount.service_account_id, status };
}

/** Waits until Temporal's visibility store lists the run under the query, so the UI's first load shows it. */
async function waitUntilListed(s: Stack, query: string, workflowId: string): Promise<void> {
  await waitUntil(
    `${workflowId} is listed under ${query}`,
    async () => {
      for await (const listed of s.env.client.workflow.list({ query })) {
        if (listed.workflowId === workflowId) return true;
      }
      return false;
    },
    { intervalMs: 200 },
  );
}

/** A fresh browser profile per test; page errors are collected for the failure message. */
async function withPage(run: (page: Page) => Promise<void>): Promise<void> {
  assert.ok(browser, 'the browser was not launched');
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  context.setDefaultTimeout(UI_TIMEOUT_MS);
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  try {
    await run(page);
  } catch (error) {
    await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-failure.png`, fullPage: true }).catch(() => {});
    const where = `page: ${page.url()}\npage errors: ${pageErrors.join(' | ') || 'none'}`;
    throw new Error(`${(error as Error).message}\n${where}`, { cause: error });
  } finally {
    await context.close();
  }
}

/** Waits until the text is shown (Playwright matches it case-insensitively, whitespace normalised). */
async function waitForText(scope: Page | FrameLocator, text: string): Promise<void> {
  await scope.getByText(text).filter({ visible: true }).first().waitFor({ timeout: UI_TIMEOUT_MS });
}

/** The run's status badge (the UI shows `Running` upper-cased). */
async function waitForRunStatus(page: Page, status: 'Running' | 'Completed'): Promise<void> {
  await page.getByText(status, { exact: true }).filter({ visible: true }).first().waitFor();
}

/** Asserts what must never appear on a page the codec server decoded. */
async function assertDecoded(page: Page): Promise<void> {
  assert.equal(await page.getByText(CODEC_FAILED_BANNER).count(), 0, 'the UI reached the codec server');
  assert.equal(await page.getByText('binary/encrypted').count(), 0, 'no payload is shown encrypted');
}

/** The operators' list, filtered by URL (`?query=`); returns once the run's row is shown. */
async function openList(page: Page, query: string, workflowId: string): Promise<void> {
  await page.goto(`${uiOrigin}/namespaces/default/workflows?query=${encodeURIComponent(query)}`);
  await page.getByRole('link', { name: workflowId, exact: true }).waitFor();
  // The filter the operator typed is what the list shows: one chip per condition.
  for (const condition of query.split(' AND ')) await waitForText(page, condition);
}

/** A run's page: `/namespaces/{namespace}/workflows/{workflowId}/{runId}/{tab}`. */
function runUrl(workflowId: string, runId: string, tab = 'timeline'): string {
  return `${uiOrigin}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/${tab}`;
}

/** The User Metadata tab renders each markdown field in its own iframe. */
function metadataFrame(page: Page, field: 'summary' | 'details' | 'current-details'): FrameLocator {
  return page.frameLocator(`#user-metadata-${field}`);
}

describe('the Temporal UI shows operators decoded runs', () => {
  test(
    'the Individual downgrade waiting for the person: found by CronofySub, input, summary, details and status query decoded',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { stack: s, runs: r } = ready();
      const { sub, userId, workflowId, status } = r.waiting;
      const query = `CronofySub = "${sub}"`;
      await waitUntilListed(s, query, workflowId);
      await withPage(async (page) => {
        await openList(page, query, workflowId);
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-list-individual.png`, fullPage: true });

        // The operator opens the run from the list.
        await page.getByRole('link', { name: workflowId, exact: true }).click();
        await page.waitForURL((url) => url.pathname.includes(`/workflows/${workflowId}/`));
        await waitForText(page, `"sub": "${sub}"`);
        await waitForText(page, `"userId": "${userId}"`);
        await waitForText(page, `"maxPrompts": 3`);
        await waitForText(page, 'Results will appear upon completion.');
        await waitForRunStatus(page, 'Running');
        await waitForText(page, s.taskQueue);
        await assertDecoded(page);
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-run.png`, fullPage: true });

        // Who, which mode, where it waits and since when, and when the consent link expires.
        await page.getByRole('tab', { name: 'User Metadata' }).click();
        await waitForText(metadataFrame(page, 'summary'), `Downgrade ${sub} (user ${userId}) to Free/Busy`);
        await waitForText(
          metadataFrame(page, 'details'),
          'Individual Connect. Up to 3 prompts, each waiting 10 min.',
        );
        const currentDetails = metadataFrame(page, 'current-details');
        await waitForText(currentDetails, 'awaiting_reauthorization · prompt 1 of 3');
        await waitForText(currentDetails, `Waiting for the person since ${status.waitingSince}`);
        await waitForText(currentDetails, `Consent link expires ${status.authorizationExpiresAt}`);
        await assertDecoded(page);
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-run-details.png`, fullPage: true });

        // The status query, answered by the worker and decoded for the UI.
        await page.getByRole('tab', { name: 'Queries' }).click();
        // The query type (a custom select) defaults to the run's only query, getStatus; the button waits for it.
        await page.getByRole('button', { name: 'Run Query' }).click();
        await waitForText(page, `"state": "awaiting_reauthorization"`);
        await waitForText(page, `"workflowId": "${workflowId}"`);
        await waitForText(page, `"authorizationUrl": "${status.authorizationUrl}"`);
        await assertDecoded(page);
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-query.png`, fullPage: true });
      });
    },
  );

  test(
    'the Enterprise downgrade waiting for the administrator: found by kind and state, input and details decoded',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { stack: s, runs: r } = ready();
      const { workflowId, runId, status, serviceAccountSub } = r.enterprise;
      const query = 'DowngradeKind = "enterprise" AND DowngradeState = "awaiting_admin"';
      await waitUntilListed(s, query, workflowId);
      await withPage(async (page) => {
        await openList(page, query, workflowId);
        assert.equal(
          await page.getByRole('link', { name: r.waiting.workflowId }).count(),
          0,
          'the filter lists Enterprise downgrades only',
        );
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-list.png`, fullPage: true });

        await page.goto(runUrl(workflowId, runId));
        await waitForText(page, `"domain": "${ENTERPRISE_DOMAIN}"`);
        await waitForText(page, `"userCount": ${ENTERPRISE_USERS.length}`);
        await waitForText(page, `"serviceAccountSub": "${serviceAccountSub}"`);
        await waitForRunStatus(page, 'Running');
        await assertDecoded(page);

        await page.getByRole('tab', { name: 'User Metadata' }).click();
        await waitForText(
          metadataFrame(page, 'summary'),
          `Downgrade domain ${ENTERPRISE_DOMAIN} (${ENTERPRISE_USERS.length} users) to Free/Busy`,
        );
        await waitForText(metadataFrame(page, 'details'), 'Enterprise Connect.');
        const currentDetails = metadataFrame(page, 'current-details');
        await waitForText(currentDetails, `awaiting_admin · domain ${ENTERPRISE_DOMAIN}`);
        await waitForText(currentDetails, `Waiting for the administrator since ${status.waitingSince}`);
        await waitForText(currentDetails, `Consent link expires ${status.authorizationExpiresAt}`);
        await waitForText(currentDetails, `Users: 0 of ${ENTERPRISE_USERS.length} started`);
        await assertDecoded(page);
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-enterprise-run.png`, fullPage: true });
      });
    },
  );

  test(
    "the domain's run links to its users' runs, and each user's run to its domain, as parent and children would",
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { stack: s, runs: r } = ready();
      const { workflowId, runId } = r.enterprise;
      await approveAsAdministrator(s, ENTERPRISE_DOMAIN);
      const users = domainUsersQuery(ENTERPRISE_DOMAIN);
      const userIds = await waitUntil('every user has a run', async () => {
        const ids: string[] = [];
        for await (const listed of s.env.client.workflow.list({ query: users })) ids.push(listed.workflowId);
        return ids.length === ENTERPRISE_USERS.length ? ids : undefined;
      });
      await withPage(async (page) => {
        await page.goto(runUrl(workflowId, runId));
        await page.getByRole('tab', { name: 'User Metadata' }).click();
        const toUsers = metadataFrame(page, 'current-details').getByRole('link', { name: USERS_LINK_TEXT });
        assert.equal(await toUsers.getAttribute('href'), workflowListLink(uiOrigin, 'default', users));
        const [list] = await Promise.all([page.context().waitForEvent('page'), toUsers.click()]);
        await list.getByRole('link', { name: userIds[0]!, exact: true }).waitFor();
        await list.screenshot({ path: `${SCREENSHOTS}temporal-ui-domain-users.png`, fullPage: true });

        await list.getByRole('link', { name: userIds[0]!, exact: true }).click();
        await list.waitForURL((url) => url.pathname.includes(`/workflows/${userIds[0]}/`));
        await list.getByRole('tab', { name: 'User Metadata' }).click();
        await waitForText(metadataFrame(list, 'summary'), `of domain ${ENTERPRISE_DOMAIN}`);
        const toDomain = metadataFrame(list, 'details').getByRole('link', { name: workflowId });
        assert.equal(await toDomain.getAttribute('href'), workflowLink(uiOrigin, 'default', workflowId));
        const [domainPage] = await Promise.all([list.context().waitForEvent('page'), toDomain.click()]);
        await domainPage.waitForURL((url) => url.pathname.includes(`/workflows/${workflowId}/`));
        await waitForText(domainPage, `"domain": "${ENTERPRISE_DOMAIN}"`);
      });
    },
  );

  test(
    'a completed Individual downgrade shows its result decoded',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { runs: r } = ready();
      const { sub, workflowId, runId } = r.completed;
      await withPage(async (page) => {
        await page.goto(runUrl(workflowId, runId));
        await waitForRunStatus(page, 'Completed');
        await waitForText(page, `"state": "completed"`);
        await waitForText(page, `"providerName": "google_free_busy"`);
        await waitForText(page, `"sub": "${sub}"`);
        await assertDecoded(page);
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-completed-run.png`, fullPage: true });
      });
    },
  );

  test(
    'with a codec server that does not trust the UI (production), the same run stays encrypted',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const { stack: s, runs: r } = ready();
      const { sub, workflowId, runId } = r.completed;
      const history = await s.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
      const stored = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      assert.equal(Buffer.from(stored?.metadata?.encoding ?? []).toString(), 'binary/encrypted');
      const ciphertext = Buffer.from(stored?.data ?? []).toString('base64');

      // Same endpoint the UI was started with; the token is now required, and the UI cannot send one.
      await codecServer?.close();
      codecServer = await startTestCodecServer(false);
      await withPage(async (page) => {
        const refused = page.waitForResponse(
          (response) => response.url().startsWith(codecServer!.url) && response.request().method() === 'POST',
        );
        await page.goto(runUrl(workflowId, runId));
        assert.equal((await refused).status(), 401);
        await waitForText(page, CODEC_FAILED_BANNER);
        await waitForText(page, ciphertext.slice(0, 40));
        assert.equal(await page.getByText(`"sub": "${sub}"`).count(), 0, 'the input is not readable');
        await page.screenshot({ path: `${SCREENSHOTS}temporal-ui-encrypted.png`, fullPage: true });
      });
    },
  );
});

test('every run stored by the server holds encrypted payloads and no issued secret or e-mail', async () => {
  assert.ok(stack, 'the stack started');
  await assertEveryHistoryHoldsNoSecrets(stack, { atLeast: 3 });
});
