/**
 * Email to the person, through a real SMTP server the test starts and whose mailbox it reads: a 50-person campaign
 * puts a consent message in each mailbox, a person who waits is reminded at the downgrade's cadence, a link
 * opened from a received message in Chromium completes that downgrade, and each completed person is confirmed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { CampaignClient } from '../src/client.js';
import { Campaigns } from '../src/store/campaigns.js';
import { campaignUserWorkflowId, campaignWorkflowId } from '../src/workflows/campaignDefinitions.js';
import { launchChromium, missingChromium, SCREENSHOTS } from '../harness/chromium.js';
import { startMailbox, type Mailbox, type ReceivedMail } from '../harness/mailbox.js';
import { waitUntil } from '../harness/waitUntil.js';
import {
  createDomain,
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  startStack,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';

const PEOPLE = 50;
const REMINDER_INTERVAL_MS = 2_000;

let stack: Stack;
let worker: RunningWorker;
let mailbox: Mailbox;
let browser: Browser | undefined;

before(async () => {
  mailbox = await startMailbox();
  stack = await startStack({ smtpUrl: mailbox.smtpUrl });
  worker = await stack.startWorker();
});

after(async () => {
  await browser?.close();
  await worker?.stop();
  await stack?.stop();
  await mailbox?.close();
});

const until = <T>(what: string, check: () => T | undefined) => waitUntil(what, check, { intervalMs: 50 });

const to = (email: string, subject: RegExp) => (message: ReceivedMail) =>
  message.to === email && subject.test(message.subject);
const linkIn = (message: ReceivedMail) => message.text.match(/https?:\/\/\S+/)?.[0];

test('a 50-person campaign by email: 50 consent messages, reminders at the cadence, a link from a message opened in Chromium completes, each completed person confirmed', async () => {
  const chromiumError = missingChromium();
  if (chromiumError) throw chromiumError;
  const people: Array<Awaited<ReturnType<typeof createReadWriteUser>>> = [];
  for (let i = 0; i < PEOPLE; i += 1) people.push(await createReadWriteUser(stack, `mailed${i}@example.com`));
  const campaigns = new CampaignClient({
    temporal: stack.env.client,
    taskQueue: stack.taskQueue,
    campaigns: new Campaigns(stack.database),
    store: stack.store,
    defaults: { deadlineMs: 300_000, reminderIntervalMs: REMINDER_INTERVAL_MS, maxPrompts: 1 },
  });
  const preview = await campaigns.preview({
    name: 'mailed',
    users: [
      people.map((person) => ({ sub: person.sub, refreshToken: person.refresh_token, email: person.email })),
    ],
  });
  await campaigns.start({ name: 'mailed', previewId: preview.previewId, window: PEOPLE });
  await campaigns.approve('mailed', { previewId: preview.previewId, by: 'ops' });
  const { captureId } = await campaigns.get('mailed');
  const workflowIdOf = (position: number) =>
    campaignUserWorkflowId(campaignWorkflowId('mailed'), captureId, position);

  const consents = await until('every person has their consent message', () => {
    const found = people.map((person) => mailbox.messages.find(to(person.email, /choose Free\/Busy/)));
    return found.every(Boolean) ? (found as ReceivedMail[]) : undefined;
  });
  assert.equal(consents.length, PEOPLE);
  for (const [i, message] of consents.entries()) {
    assert.match(message.html, /<a href="http/, 'the HTML part links to the consent page');
    assert.match(message.text, /help@example\.com/, "the application's support address");
    assert.equal(message.text.includes(people[i]!.refresh_token), false, 'no token in a message');
    assert.equal(message.text.includes(people[i]!.access_token), false, 'no token in a message');
  }

  // Everyone but the last consents through the link their message holds.
  for (let i = 0; i < PEOPLE - 1; i += 10) {
    await Promise.all(
      people.slice(i, Math.min(i + 10, PEOPLE - 1)).map(async (person, j) => {
        const link = linkIn(consents[i + j]!);
        assert.ok(link, `a link in ${person.email}'s message`);
        assert.equal(new URL(link).pathname, '/downgrade/link', "the service's link, not Cronofy's");
        const page = await followRedirect(
          await decideOnConsentPage(link, 'free_busy_google', { email: person.email }),
        );
        assert.equal(page.status, 303);
      }),
    );
  }

  // The last waits: reminded at the cadence, never sooner.
  const last = people[PEOPLE - 1]!;
  const reminders = await until('two reminders reached the last person', () => {
    const found = mailbox.messages.filter(to(last.email, /^Reminder/));
    return found.length >= 2 ? found : undefined;
  });
  // Each reminder's timer starts once the one before is recorded: they are recorded an interval apart, or more.
  const recorded = (await stack.notifications.list({ stream: workflowIdOf(PEOPLE - 1) })).filter(
    (event) => event.channel === 'email' && event.eventType === 'reminder',
  );
  assert.ok(recorded.length >= 2);
  assert.ok(
    Date.parse(recorded[1]!.createdAt) - Date.parse(recorded[0]!.createdAt) >= REMINDER_INTERVAL_MS,
    'the second reminder was recorded an interval after the first',
  );

  browser = await launchChromium();
  const page = await browser.newPage();
  const link = linkIn(reminders.at(-1)!);
  assert.ok(link);
  await page.goto(link);
  const chooser = page.locator('select[name="email"]');
  if ((await chooser.count()) > 0) await chooser.selectOption(last.email);
  await page.locator('[data-testid="decision-free_busy_google"]').click();
  await page.waitForURL((url) => url.pathname === '/downgrade/answered');
  await page.screenshot({ path: `${SCREENSHOTS}email-link-completed.png`, fullPage: true });

  const result = await campaigns.waitForResult('mailed');
  assert.deepEqual(result.counts, { completed: PEOPLE });
  const lastStatus = await stack.individual.get(workflowIdOf(PEOPLE - 1));
  assert.equal(lastStatus.state, 'completed');

  await until('each person is confirmed', () =>
    people.every((person) => mailbox.messages.some(to(person.email, /your calendar is connected/)))
      ? true
      : undefined,
  );
  const consentMessages = mailbox.messages.filter((message) => /choose Free\/Busy/.test(message.subject));
  assert.equal(consentMessages.length, PEOPLE, 'one consent message each');
});

test("a domain's administrator receives their link by email, which completes the domain's re-authorization", async () => {
  const domain = 'mailed.example.org';
  const users = ['a', 'b'].map((name) => `${name}@${domain}`);
  const serviceAccount = await createDomain(stack, domain, users);
  await stack.enterprise.start({
    domain,
    requireApproval: false,
    users: [users],
    serviceAccountRefreshToken: serviceAccount.refresh_token,
    adminEmail: `admin@${domain}`,
  });
  const message = await until('the administrator has their message', () =>
    mailbox.messages.find(to(`admin@${domain}`, /authorize Free\/Busy access for mailed\.example\.org/)),
  );
  const link = linkIn(message);
  assert.ok(link, 'a link in the message');
  assert.match(message.html, /Authorize Free\/Busy for mailed\.example\.org/);
  const page = await followRedirect(await decideOnConsentPage(link, 'free_busy_google', { domain }));
  assert.equal(page.status, 303);
  const result = await stack.enterprise.waitForResult(domain);
  assert.equal(result.phase, 'completed');
  assert.deepEqual(result.counts, { completed: users.length });
});
