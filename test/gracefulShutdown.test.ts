/**
 * SIGTERM while people are coming back from the consent page: the service (`src/main.ts`, its own process) stops
 * taking requests, answers the ones in flight, drains its worker and exits 0. No callback is lost: each one was
 * either delivered (303 on to the answered page), or refused in a way that asks the person to retry (503, connection refused), and the
 * retry against the restarted service is accepted — every downgrade completes with exactly one signal.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import got, { RequestError } from 'got';
import { z } from 'zod';
import { IndividualRuns } from '../src/client.js';
import type { RunningSimulator } from '../simulator/server.js';
import { Keyring } from '../src/store/encryption.js';
import {
  startServiceProcess,
  startServiceSurroundings,
  type ServiceProcess,
} from '../harness/serviceProcess.js';
import { CLIENT, decideOnConsentPage } from '../harness/stack.js';
import { assertEveryHistoryHoldsNoSecrets } from '../harness/histories.js';
import { waitUntil } from '../harness/waitUntil.js';

const PEOPLE = 40;
const CONCURRENCY = 6;

let env: TestWorkflowEnvironment;
let simulator: RunningSimulator;
let service: ServiceProcess | undefined;
let directory: string;
let callbackPort: number;
let individual: IndividualRuns;
const taskQueue = `graceful-${Date.now()}`;
const credentialKeys = Keyring.generateSpec('graceful1');

before(async () => {
  ({ env, simulator, callbackPort } = await startServiceSurroundings({
    perSecond: 1_000,
    perMinute: 100_000,
  }));

  directory = mkdtempSync(join(tmpdir(), 'graceful-'));

  // Revokes by sub: the service's embedded database belongs to its process alone.
  individual = new IndividualRuns({
    temporal: env.client,
    taskQueue,
    defaults: { deadlineMs: 300_000, reminderIntervalMs: 300_000, maxPrompts: 1 },
  });
  service = await start();
});

after(async () => {
  await service?.stop('SIGKILL');
  await simulator?.close();
  await env?.teardown();
  if (directory) rmSync(directory, { recursive: true, force: true });
});

function start(): Promise<ServiceProcess> {
  return startServiceProcess({
    temporalAddress: env.address,
    taskQueue,
    databaseUrl: `file:${join(directory, 'credentials')}`,
    credentialKeys,
    simulatorUrl: simulator.url,
    callbackPort,
    cronofyCallsPerSecond: 200,
  });
}

const Account = z.object({ sub: z.string(), email: z.string() });

type Outcome = { status: number } | { error: string };

async function sendCallback(url: string): Promise<Outcome> {
  try {
    // A new connection each time, as browsers of different people would open.
    const response = await got(url, {
      throwHttpErrors: false,
      followRedirect: false,
      retry: { limit: 0 },
      agent: {},
      headers: { connection: 'close' },
      timeout: { request: 20_000 },
    });
    return { status: response.statusCode };
  } catch (error) {
    if (error instanceof RequestError) return { error: error.code };
    throw error;
  }
}

test('SIGTERM during a stream of callbacks: in-flight ones answered, exit 0, none lost', async (t) => {
  const people = [];
  for (let i = 0; i < PEOPLE; i++) {
    const account = Account.parse(
      await got
        .post(`${simulator.url}/_sim/accounts`, {
          json: { email: `graceful${i}@example.com`, client_id: CLIENT.clientId },
        })
        .json(),
    );
    const { workflowId } = await individual.start({ sub: account.sub });
    people.push({ ...account, workflowId });
  }
  const callbacks: Array<{ workflowId: string; url: string }> = [];
  for (const person of people) {
    const authorizationUrl = await waitUntil(
      `${person.workflowId} asks for consent`,
      async () => (await individual.get(person.workflowId)).authorizationUrl,
    );
    const location = await decideOnConsentPage(authorizationUrl, 'free_busy_google', {
      email: person.email,
    });
    callbacks.push({ workflowId: person.workflowId, url: location.toString() });
  }

  // Callbacks stream in; SIGTERM arrives once a quarter of them were answered.
  const outcomes = new Map<string, Outcome & { sentBeforeTerm: boolean; answeredAfterTerm: boolean }>();
  let termSentAt: number | undefined;
  let next = 0;
  const sender = async () => {
    while (next < callbacks.length) {
      const callback = callbacks[next++]!;
      const sentBeforeTerm = termSentAt === undefined;
      const outcome = await sendCallback(callback.url);
      outcomes.set(callback.workflowId, {
        ...outcome,
        sentBeforeTerm,
        answeredAfterTerm: termSentAt !== undefined && 'status' in outcome,
      });
      if (termSentAt === undefined && outcomes.size >= PEOPLE / 4) {
        termSentAt = Date.now();
        service!.child.kill('SIGTERM');
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, sender));
  const exitCode = await service!.exited;
  assert.equal(exitCode, 0, 'the service exits 0 after SIGTERM');

  const all = [...outcomes.values()];
  const statuses = all.flatMap((outcome) => ('status' in outcome ? [outcome.status] : []));
  assert.ok(
    statuses.every((status) => status === 303 || status === 503),
    `only 303 (delivered) or 503 (retry) during shutdown, got ${JSON.stringify(statuses)}`,
  );
  const errors = all.flatMap((outcome) => ('error' in outcome ? [outcome.error] : []));
  assert.ok(
    errors.every((code) => code === 'ECONNREFUSED' || code === 'ECONNRESET'),
    `a request failed other than by a refused connection: ${JSON.stringify(errors)}`,
  );
  assert.ok(
    all.some((outcome) => outcome.sentBeforeTerm && outcome.answeredAfterTerm && 'status' in outcome),
    'requests in flight when SIGTERM arrived were answered',
  );
  assert.ok(errors.length + statuses.filter((s) => s === 503).length > 0, 'some callbacks met the shutdown');
  const tally: Record<string, number> = {};
  for (const outcome of all) {
    const key = 'status' in outcome ? String(outcome.status) : outcome.error;
    tally[key] = (tally[key] ?? 0) + 1;
  }
  t.diagnostic(`during shutdown: ${JSON.stringify(tally)}`);

  // The people who were not served retry against the restarted service.
  service = await start();
  for (const callback of callbacks) {
    const first = outcomes.get(callback.workflowId)!;
    if ('status' in first && first.status === 303) continue;
    const retry = await sendCallback(callback.url);
    // 409: the first attempt was delivered, but its answer was cut off.
    assert.ok('status' in retry && (retry.status === 303 || retry.status === 409), JSON.stringify(retry));
  }

  for (const { workflowId } of callbacks) {
    const result = await individual.waitForResult(workflowId);
    assert.equal(result.state, 'completed', `${workflowId} completed`);
    const events = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const signals = events.filter((event) => event.workflowExecutionSignaledEventAttributes).length;
    assert.equal(signals, 1, `${workflowId} received exactly one callback`);
  }
});

test('every run stored by the server holds encrypted payloads and no issued secret or e-mail', async () => {
  await assertEveryHistoryHoldsNoSecrets({ env, simulator }, { atLeast: PEOPLE });
});
