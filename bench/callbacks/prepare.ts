// Preparation: N individual downgrades waiting for re-authorization, and a real consent redirect for each.
import got from 'got';
import { z } from 'zod';
import { REDIRECT_PATH } from '../../src/contracts/callbackPaths.js';
import { parseConsentFormBase } from '../../harness/consentForm.js';
import { CLIENT, log, mapLimit, sleep } from '../support.js';
import { PREPARE_CONCURRENCY, CONSENT_PAGE_SAMPLE } from './options.js';
import type { Stack } from './stack.js';

export interface Prepared {
  workflowId: string;
  sub: string;
  email: string;
  authorizationUrl: string;
  /** Where the simulator sent the browser back: the callback server's URL with `code` and `state`. */
  callback: URL;
}

const SimulatorAccount = z.object({ sub: z.string(), email: z.string(), refresh_token: z.string() });

/** Running downgrades of one batch: those started since it began (visibility, so nothing earlier counts). */
export const runningQuery = (stack: Stack, since: Date) =>
  `TaskQueue = '${stack.taskQueue}' AND ExecutionStatus = 'Running' AND StartTime >= '${since.toISOString()}'`;

export async function prepare(
  stack: Stack,
  label: string,
  n: number,
  status: { text: string },
): Promise<Prepared[] & { since: Date }> {
  const steps: string[] = [];
  let stepStart = Date.now();
  const step = (name: string) => {
    steps.push(`${name} ${((Date.now() - stepStart) / 1000).toFixed(1)} s`);
    stepStart = Date.now();
  };
  const since = new Date();
  let created = 0;
  let started = 0;
  const accounts = await mapLimit(
    Array.from({ length: n }, (_, i) => i),
    PREPARE_CONCURRENCY,
    async (i) => {
      const account = SimulatorAccount.parse(
        await got
          .post(`${stack.simulatorUrl}/_sim/accounts`, {
            json: { email: `${label}-${i}-${Date.now()}@bench.example.org`, client_id: CLIENT.clientId },
          })
          .json(),
      );
      status.text = `${label}: accounts ${++created}/${n}`;
      return account;
    },
  );
  step('accounts');
  const workflowIds = await mapLimit(accounts, PREPARE_CONCURRENCY, async (account, i) => {
    const { workflowId } = await stack.individual.start({
      sub: account.sub,
      refreshToken: account.refresh_token,
      userId: `${label}-${i}`,
    });
    status.text = `${label}: started ${++started}/${n}`;
    return workflowId;
  });
  step('starts');
  for (;;) {
    const waiting = (
      await stack.client.workflow.count(
        `${runningQuery(stack, since)} AND DowngradeState = 'awaiting_reauthorization'`,
      )
    ).count;
    status.text = `${label}: ${waiting}/${n} waiting for re-authorization`;
    if (waiting >= n) break;
    await sleep(500);
  }
  step('until waiting');
  let queried = 0;
  const urls = await mapLimit(workflowIds, PREPARE_CONCURRENCY, async (workflowId) => {
    for (;;) {
      const downgrade = await stack.individual.get(workflowId);
      if (downgrade.state === 'awaiting_reauthorization' && downgrade.authorizationUrl) {
        status.text = `${label}: consent links ${++queried}/${n}`;
        return downgrade.authorizationUrl;
      }
      if (downgrade.state !== 'revoking')
        throw new Error(`${workflowId} is ${downgrade.state}: ${downgrade.reason}`);
      await sleep(200);
    }
  });
  step('queries');
  const callbacks = await collectConsents(stack, accounts, urls, label, status);
  step('consents');
  log(`${label}: prepared ${n}: ${steps.join(', ')}`);
  const prepared = accounts.map((account, i) => ({
    workflowId: workflowIds[i]!,
    sub: account.sub,
    email: account.email,
    authorizationUrl: urls[i]!,
    callback: callbacks[i]!,
  }));
  return Object.assign(prepared, { since });
}

/**
 * Each person approves Free/Busy on the simulator's consent page, over HTTP; the redirect is not followed, its
 * Location (the callback URL with code and state) is kept for the load. The simulator's page lists every account
 * the application ever had, so loading it is O(accounts): the page is loaded and checked for a sample, and for
 * every downgrade the browser's form submission (the page's hidden fields are the authorization URL's parameters,
 * as the sample confirms) is posted.
 */
async function collectConsents(
  stack: Stack,
  accounts: Array<z.infer<typeof SimulatorAccount>>,
  urls: string[],
  label: string,
  status: { text: string },
): Promise<URL[]> {
  let done = 0;
  return mapLimit(urls, PREPARE_CONCURRENCY, async (authorizationUrl, i) => {
    const url = new URL(authorizationUrl);
    const fields = Object.fromEntries(url.searchParams);
    let action = '/oauth/authorize';
    if (i < CONSENT_PAGE_SAMPLE) {
      const form = parseConsentFormBase((await got(authorizationUrl)).body);
      if (!form.decisions.includes('free_busy_google'))
        throw new Error('the consent page offers no Google Free/Busy');
      if (JSON.stringify(form.hidden) !== JSON.stringify(fields)) {
        throw new Error(`the consent form's hidden fields are not the authorization URL's parameters`);
      }
      action = form.action;
    }
    const body = new URLSearchParams({ ...fields, decision: 'free_busy_google', email: accounts[i]!.email });
    const response = await got.post(new URL(action, url), {
      body: body.toString(),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      followRedirect: false,
      throwHttpErrors: false,
    });
    const location = response.headers.location;
    if (response.statusCode !== 302 || !location) {
      throw new Error(`consent page answered ${response.statusCode}: ${response.body.slice(0, 200)}`);
    }
    const callback = new URL(location);
    if (
      callback.origin !== stack.callbackBase ||
      callback.pathname !== REDIRECT_PATH ||
      !callback.searchParams.get('code') ||
      !callback.searchParams.get('state')
    ) {
      throw new Error(`unexpected consent redirect ${callback.origin}${callback.pathname}`);
    }
    status.text = `${label}: consents ${++done}/${urls.length}`;
    return callback;
  });
}

/** The callback server's answer to a delivered redirect: 303 on to a page whose URL carries no code. */
export const DELIVERED = 303;

export const pathOf = (url: URL) => `${url.pathname}${url.search}`;
