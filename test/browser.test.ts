/**
 * The consent flow as a person goes through it: the authorization URL opened in a real headless Chromium, the
 * simulator's consent page clicked, Cronofy's redirect followed by the browser to the callback server.
 *
 * Needs Chromium (Debian's `chromium` package, or CHROMIUM_PATH); `npm test` installs it through
 * scripts/prepare-tests.sh. Without it these tests fail — they never skip.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium, missingChromium, SCREENSHOTS } from '../harness/chromium.js';
import {
  createDomain,
  createReadWriteUser,
  startStack,
  TEST_VERDICT_WAIT_MS,
  waitForState,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';
import { assertEveryHistoryHoldsNoSecrets } from '../harness/histories.js';
import { waitUntil } from '../harness/waitUntil.js';

const TEST_TIMEOUT_MS = 60_000;
/** Two consent pages and the two answered pages between them. */
const TWO_PROMPTS_TIMEOUT_MS = 2 * TEST_VERDICT_WAIT_MS + TEST_TIMEOUT_MS;

const chromiumError = missingChromium();
let browser: Browser | undefined;
let stack: Stack | undefined;
let worker: RunningWorker | undefined;

/** The running stack; each test calls it first, so a missing Chromium fails every test (never skips one). */
function ready(): Stack {
  if (chromiumError) throw chromiumError;
  assert.ok(stack && browser, 'the stack or the browser did not start');
  return stack;
}

before(async () => {
  if (chromiumError) return;
  browser = await launchChromium(['--disable-quic', '--disable-component-update', '--disable-sync']);
  stack = await startStack();
  worker = await stack.startWorker();
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await stack?.stop();
});

/** A fresh browser profile per test; page errors are collected so a broken page fails the test. */
async function withPage(run: (page: Page, pageErrors: Error[]) => Promise<void>): Promise<void> {
  assert.ok(browser, 'the browser was not launched');
  const context: BrowserContext = await browser.newContext({ viewport: { width: 900, height: 900 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const pageErrors: Error[] = [];
  page.on('pageerror', (error) => pageErrors.push(error));
  try {
    await run(page, pageErrors);
  } finally {
    await context.close();
  }
}

let userCount = 0;
/** A Read/Write user whose downgrade is waiting on the person: returns the link the application would send. */
async function startDowngrade(s: Stack) {
  userCount += 1;
  const user = await createReadWriteUser(s, `browser-person${userCount}@example.com`);
  const { workflowId } = await s.individual.start({
    sub: user.sub,
    userId: `browser-user-${userCount}`,
    refreshToken: user.refresh_token,
  });
  const status = await waitForState(s, workflowId, (state) => state === 'awaiting_reauthorization');
  assert.ok(status.authorizationUrl, 'the waiting downgrade has an authorization URL');
  return { user, workflowId, authorizationUrl: status.authorizationUrl };
}

/** Opens the consent page and, when it offers an account chooser, picks the person's account. */
async function openConsentPage(page: Page, authorizationUrl: string, email: string) {
  const response = await page.goto(authorizationUrl);
  assert.equal(response?.status(), 200, 'the consent page loads');
  assert.equal(await page.locator('h1').textContent(), 'Connect your calendar');
  const chooser = page.locator('select[name="email"]');
  if ((await chooser.count()) > 0) {
    await chooser.selectOption(email);
    assert.equal(await chooser.inputValue(), email);
  }
}

/**
 * Clicks a decision and waits for the browser to pass through the callback server and land on the page it sends
 * the browser on to; returns the callback's status and URL.
 */
async function decide(page: Page, s: Stack, decision: string): Promise<{ status: number; callback: URL }> {
  const callback = page.waitForResponse((response) => response.url().startsWith(s.redirectUri));
  await page.locator(`[data-testid="decision-${decision}"]`).click();
  const response = await callback;
  // The page answers once the downgrade has judged the answer: wait as long as the page may (its safety net).
  await page.waitForURL((url) => url.pathname === '/downgrade/answered', {
    timeout: TEST_VERDICT_WAIT_MS + 15_000,
  });
  await page.waitForLoadState('load');
  // What stays in the browser's history holds no code and no state.
  assert.equal(new URL(page.url()).searchParams.has('code'), false);
  assert.equal(new URL(page.url()).searchParams.has('state'), false);
  return { status: response.status(), callback: new URL(response.url()) };
}

describe('consent in a real browser', () => {
  test(
    'a person choosing Free/Busy with Google is told it is confirmed, and the downgrade completes',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const s = ready();
      const { user, workflowId, authorizationUrl } = await startDowngrade(s);
      await withPage(async (page, pageErrors) => {
        await openConsentPage(page, authorizationUrl, user.email);
        await page.screenshot({ path: `${SCREENSHOTS}consent-page.png`, fullPage: true });

        const { status, callback } = await decide(page, s, 'free_busy_google');
        assert.equal(status, 303);
        assert.equal(callback.searchParams.get('error'), null);
        assert.ok(callback.searchParams.get('code'), 'Cronofy sent an authorization code back');
        assert.equal(await page.locator('h1').textContent(), 'Your calendar is connected with Free/Busy');
        await page.screenshot({ path: `${SCREENSHOTS}result-page.png`, fullPage: true });
        assert.deepEqual(pageErrors, []);
      });

      const result = await s.individual.waitForResult(workflowId);
      assert.equal(result.state, 'completed');
      assert.equal(result.providerName, 'google_free_busy');
    },
  );

  test(
    'a person denying access in the browser is told so, and the downgrade ends as denied',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const s = ready();
      const { user, workflowId, authorizationUrl } = await startDowngrade(s);
      await withPage(async (page, pageErrors) => {
        await openConsentPage(page, authorizationUrl, user.email);
        const { status, callback } = await decide(page, s, 'deny');
        assert.equal(status, 303);
        assert.equal(callback.searchParams.get('error'), 'access_denied');
        assert.equal(await page.locator('h1').textContent(), 'You declined');
        await page.screenshot({ path: `${SCREENSHOTS}denied-page.png`, fullPage: true });
        assert.deepEqual(pageErrors, []);
      });

      const result = await s.individual.waitForResult(workflowId);
      assert.equal(result.state, 'denied');
    },
  );
});

describe('the page after consent tells how the answer was judged', () => {
  test(
    'a person who picks Read/Write is told so, follows the fresh link on the page and completes with Free/Busy',
    { timeout: TWO_PROMPTS_TIMEOUT_MS },
    async () => {
      const s = ready();
      const { user, workflowId, authorizationUrl } = await startDowngrade(s);
      await withPage(async (page, pageErrors) => {
        await openConsentPage(page, authorizationUrl, user.email);
        assert.equal((await decide(page, s, 'read_write_google')).status, 303);
        assert.equal(await page.locator('h1').textContent(), 'You chose Read/Write access again');
        await page.screenshot({ path: `${SCREENSHOTS}read-write-again-page.png`, fullPage: true });
        const link = page.getByRole('link', { name: 'Sign in again with Free/Busy' });
        const reprompt = await s.individual.get(workflowId);
        assert.equal(reprompt.prompt, 2);
        assert.equal(await link.getAttribute('href'), reprompt.authorizationUrl);

        await link.click();
        await page.waitForURL((url) => url.pathname === new URL(reprompt.authorizationUrl!).pathname);
        assert.equal(page.url(), reprompt.authorizationUrl);
        assert.equal(await page.locator('h1').textContent(), 'Connect your calendar');
        const chooser = page.locator('select[name="email"]');
        if ((await chooser.count()) > 0) await chooser.selectOption(user.email);
        assert.equal((await decide(page, s, 'free_busy_google')).status, 303);
        assert.equal(await page.locator('h1').textContent(), 'Your calendar is connected with Free/Busy');
        assert.deepEqual(pageErrors, []);
      });

      const result = await s.individual.waitForResult(workflowId);
      assert.equal(result.state, 'completed');
      assert.equal(result.prompt, 2);
    },
  );

  test(
    'an administrator who enters another domain is told so, and the domain ends as other_account',
    { timeout: TEST_TIMEOUT_MS },
    async () => {
      const s = ready();
      const domain = 'browser-admin.example.com';
      const emails = ['ann@browser-admin.example.com', 'bob@browser-admin.example.com'];
      const serviceAccount = await createDomain(s, domain, emails);
      await s.enterprise.start({
        domain,
        requireApproval: false,
        users: [emails],
        serviceAccountRefreshToken: serviceAccount.refresh_token,
        serviceAccountSub: serviceAccount.service_account_id,
      });
      const authorizationUrl = await adminConsentLink(s, domain);
      await withPage(async (page, pageErrors) => {
        const response = await page.goto(authorizationUrl);
        assert.equal(response?.status(), 200);
        assert.equal(await page.locator('h1').textContent(), 'Connect your organization');
        await page.locator('[data-testid="domain"]').fill('admin@another-domain.example.com');
        assert.equal((await decide(page, s, 'free_busy_google')).status, 303);
        assert.equal(await page.locator('h1').textContent(), 'You signed in for another domain');
        await page.screenshot({ path: `${SCREENSHOTS}other-domain-page.png`, fullPage: true });
        assert.deepEqual(pageErrors, []);
      });

      const result = await s.enterprise.waitForResult(domain);
      assert.equal(result.phase, 'other_account');
    },
  );
});

/** The administrator's consent link, once the domain's downgrade asks for it. */
async function adminConsentLink(s: Stack, domain: string): Promise<string> {
  return waitUntil(`the domain ${domain} asks for its administrator's consent`, async () => {
    const status = await s.enterprise.get(domain);
    return status.phase === 'awaiting_admin' && status.authorizationUrl ? status.authorizationUrl : undefined;
  });
}

test('every run stored by the server holds encrypted payloads and no issued secret or e-mail', async () => {
  assert.ok(stack, 'the stack started');
  await assertEveryHistoryHoldsNoSecrets(stack, { atLeast: 2 });
});
