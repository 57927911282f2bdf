/**
 * The decisions of an operated run, by the workflow code alone: approval (the run's own preview, a name, a
 * deadline), reject, pause and resume, and the circuit breaker. A campaign runs on a real Temporal dev server; its
 * activities are stubs typed against the real ones, scripted per test with each user's outcome, so every assertion
 * follows from what the run was told, not from how long anything took. A domain's downgrade shares this code
 * (OperatorControls, moveUsersInWindow); test/enterpriseControl.test.ts runs it end to end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WithStartWorkflowOperation } from '@temporalio/client';
import type { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker as TemporalWorker } from '@temporalio/worker';
import { freePort } from '../harness/ports.js';
import { startTemporalServer } from '../harness/temporalServer.js';
import { waitUntil } from '../harness/waitUntil.js';
import { testWorkflowBundle } from '../harness/workflowBundle.js';
import type { ServiceActivities } from '../src/activities/index.js';
import { CampaignRuns, DowngradeRefusedError } from '../src/client.js';
import { runtimeTelemetryOptions } from '../src/observability/metrics.js';
import { DOWNGRADE_FINISHED, DOWNGRADE_STARTED } from '../src/workflows/metrics.js';
import {
  campaignUpdates,
  campaignWorkflowId,
  type CampaignEvent,
  type CampaignInput,
} from '../src/workflows/campaignDefinitions.js';

/** One campaign's script: each user's outcome once started (undefined: still waiting), and what the stubs saw. */
interface Campaign {
  outcome(position: number): string | undefined;
  started: number[];
  events: CampaignEvent[];
}

const campaigns = new Map<string, Campaign>();
const campaignOf = (captureId: string) => campaigns.get(captureId)!;

/** The activities a campaign calls, typed against the real ones so that a changed signature fails to compile. */
const stubs: Pick<
  ServiceActivities,
  'startCampaignUsers' | 'countCampaignOutcomes' | 'cancelCampaignUsers' | 'notifyApplication'
> = {
  async startCampaignUsers({ captureId, from, size }) {
    for (let position = from; position < from + size; position++)
      campaignOf(captureId).started.push(position);
  },
  async countCampaignOutcomes({ captureId }) {
    const campaign = campaignOf(captureId);
    const counts: Record<string, number> = {};
    for (const position of campaign.started) {
      const state = campaign.outcome(position);
      if (state) counts[state] = (counts[state] ?? 0) + 1;
    }
    return counts;
  },
  async cancelCampaignUsers() {},
  async notifyApplication(event) {
    if (event.type === 'campaign_paused') campaignOf(event.status.captureId).events.push(event);
  },
};

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let runs: CampaignRuns;
let metricsUrl: string;
const taskQueue = `operated-${Date.now()}`;

before(async () => {
  // This file is its own process: the Runtime, and so its Prometheus endpoint, are this file's.
  metricsUrl = `http://127.0.0.1:${await freePort()}/metrics`;
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: runtimeTelemetryOptions(new URL(metricsUrl).host),
  });
  env = await startTemporalServer();
  worker = await TemporalWorker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await testWorkflowBundle(),
    activities: stubs,
  });
  running = worker.run();
  runs = new CampaignRuns(env.client);
});

after(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

const OPS = { by: 'ops@example.com' };
const BREAKER = { minFailures: 20, failureRatio: 0.4 };
let count = 0;

/** Starts a campaign of `userCount` users whose outcomes `outcome` decides; answers its name and its script. */
async function startCampaign(
  outcome: Campaign['outcome'],
  input: Partial<CampaignInput> & { userCount: number },
): Promise<{ name: string; campaign: Campaign }> {
  const name = `c${++count}`;
  const campaign: Campaign = { outcome, started: [], events: [] };
  campaigns.set(name, campaign);
  await env.client.workflow.start('individualCampaign', {
    workflowId: campaignWorkflowId(name),
    taskQueue,
    args: [
      {
        name,
        captureId: name,
        window: 50,
        downgrade: { deadlineMs: 60_000, reminderIntervalMs: 60_000, maxPrompts: 1 },
        ...input,
      } satisfies CampaignInput,
    ],
  });
  return { name, campaign };
}

const phaseIs = (name: string, phase: string) => async () => (await runs.get(name)).phase === phase;

describe('approval', () => {
  const approval = { previewId: 'pv_run', deadlineMs: 3_600_000 };

  test('refuses another preview and an unnamed decision; the run preview lets users start', async () => {
    const { name, campaign } = await startCampaign(() => 'completed', { userCount: 60, approval });
    await waitUntil('the campaign awaits approval', phaseIs(name, 'awaiting_approval'));

    await assert.rejects(runs.approve(name, { ...OPS, previewId: 'pv_other' }), (error: Error) => {
      assert.ok(error instanceof DowngradeRefusedError);
      assert.match(error.message, /preview pv_other is not the one this run was started from \(pv_run\)/);
      return true;
    });
    await assert.rejects(runs.approve(name, { by: ' ', previewId: 'pv_run' }), /say who decides/);
    await assert.rejects(runs.pause(name, OPS), /is awaiting_approval, not moving_users/);
    assert.deepEqual(campaign.started, [], 'nobody starts before approval');

    const approved = await runs.approve(name, { ...OPS, previewId: 'pv_run' });
    assert.notEqual(approved.phase, 'awaiting_approval');
    const result = await runs.waitForResult(name);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 60 });
    assert.equal(result.approval?.decidedBy, OPS.by);
    assert.equal(campaign.started.length, 60);
  });

  test("an approval that arrives with the run's first task (update-with-start) is taken, not refused", async () => {
    const name = `c${++count}`;
    const campaign: Campaign = { outcome: () => 'completed', started: [], events: [] };
    campaigns.set(name, campaign);
    const input: CampaignInput = {
      name,
      captureId: name,
      userCount: 5,
      window: 50,
      downgrade: { deadlineMs: 60_000, reminderIntervalMs: 60_000, maxPrompts: 1 },
      approval,
    };
    const approved = await env.client.workflow.executeUpdateWithStart(campaignUpdates.approve, {
      args: [{ ...OPS, previewId: 'pv_run' }],
      startWorkflowOperation: new WithStartWorkflowOperation('individualCampaign', {
        workflowId: campaignWorkflowId(name),
        taskQueue,
        args: [input],
        workflowIdConflictPolicy: 'FAIL',
      }),
    });
    assert.equal(approved.approval?.decidedBy, OPS.by);
    const result = await runs.waitForResult(name);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 5 });
  });

  test('a rejected run ends rejected, with its reason, and starts nobody', async () => {
    const { name, campaign } = await startCampaign(() => 'completed', { userCount: 10, approval });
    await waitUntil('the campaign awaits approval', phaseIs(name, 'awaiting_approval'));
    await runs.reject(name, { ...OPS, reason: 'wrong list' });
    const result = await runs.waitForResult(name);
    assert.equal(result.phase, 'rejected');
    assert.equal(result.reason, `rejected by ${OPS.by}: wrong list`);
    assert.deepEqual(campaign.started, []);
    await assert.rejects(runs.approve(name, { ...OPS, previewId: 'pv_run' }), /has ended \(rejected\)/);
  });

  test('a run nobody approves before its deadline ends expired and starts nobody', async () => {
    const { name, campaign } = await startCampaign(() => 'completed', {
      userCount: 10,
      approval: { previewId: 'pv_run', deadlineMs: 500 },
    });
    const result = await runs.waitForResult(name);
    assert.equal(result.phase, 'expired');
    assert.match(result.reason ?? '', /^not approved before /);
    assert.deepEqual(campaign.started, []);
  });
});

describe('pause and the circuit breaker', () => {
  test('the breaker pauses on failures and tells the application; resuming forgives them', async () => {
    // The first window's 50 users all fail, every later one completes.
    const { name, campaign } = await startCampaign((position) => (position < 50 ? 'failed' : 'completed'), {
      userCount: 100,
      breaker: BREAKER,
    });
    await waitUntil('the breaker pauses the campaign', phaseIs(name, 'paused'));
    const paused = await runs.get(name);
    assert.equal(paused.paused?.by, 'circuit breaker');
    assert.equal(paused.paused?.reason, 'circuit breaker: 50 of 50 users failed');
    assert.equal(campaign.started.length, 50, 'no user starts once the breaker has tripped');
    assert.deepEqual(
      campaign.events.map((event) => event.type),
      ['campaign_paused'],
    );

    await runs.resume(name, OPS);
    const result = await runs.waitForResult(name);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { failed: 50, completed: 50 });
    assert.equal(campaign.events.length, 1, 'the failures before the resume do not trip it again');
  });

  test('without a breaker, failures do not pause the run', async () => {
    const { name } = await startCampaign(() => 'failed', { userCount: 30 });
    const result = await runs.waitForResult(name);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { failed: 30 });
  });

  test('a paused run starts nobody, however much room its window has, until resumed', async () => {
    let released = false;
    const { name, campaign } = await startCampaign(() => (released ? 'completed' : undefined), {
      userCount: 100,
      breaker: BREAKER,
    });
    await waitUntil('the first window starts', () => campaign.started.length === 50);
    const paused = await runs.pause(name, { ...OPS, reason: 'deploy' });
    assert.equal(paused.phase, 'paused');
    assert.deepEqual(paused.paused && { by: paused.paused.by, reason: paused.paused.reason }, {
      ...OPS,
      reason: 'deploy',
    });
    await assert.rejects(runs.pause(name, OPS), /is paused, not moving_users/);

    // The first 50 finish: the window empties while the run is paused, and it reads their outcomes.
    released = true;
    await waitUntil('the paused run has read the outcomes', async () => {
      return (await runs.get(name)).counts['completed'] === 50;
    });
    assert.equal(campaign.started.length, 50, 'nobody starts while paused');
    assert.equal((await runs.get(name)).phase, 'paused');

    await runs.resume(name, OPS);
    const result = await runs.waitForResult(name);
    assert.equal(result.phase, 'completed');
    assert.deepEqual(result.counts, { completed: 100 });
    await assert.rejects(runs.resume(name, OPS), /has ended \(completed\)/);
  });
});

test('a campaign counts its start and its ending in the metrics, as a domain does', async () => {
  /** The sum of a workflow counter's samples of kind `campaign` (and `outcome`, given one). */
  const campaignCount = async (name: string, outcome?: string) => {
    const text = await (await fetch(metricsUrl)).text();
    return text
      .split('\n')
      .filter((line) => line.startsWith(`${name}{`) && line.includes('kind="campaign"'))
      .filter((line) => !outcome || line.includes(`outcome="${outcome}"`))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  };
  const before = {
    started: await campaignCount(DOWNGRADE_STARTED),
    completed: await campaignCount(DOWNGRADE_FINISHED, 'completed'),
  };
  const { name } = await startCampaign(() => 'completed', { userCount: 5 });
  assert.equal((await runs.waitForResult(name)).phase, 'completed');
  await waitUntil(
    'the counters include the campaign',
    async () =>
      (await campaignCount(DOWNGRADE_STARTED)) === before.started + 1 &&
      (await campaignCount(DOWNGRADE_FINISHED, 'completed')) === before.completed + 1,
  );
});
