/**
 * Records the history of an Individual downgrade that an earlier version's workflow code starts and the current
 * code finishes: what a rolling deploy does to the workflow side of a downgrade waiting for its person (both
 * workers run the current activities). test/replay.test.ts replays the recorded history with every other fixture,
 * so a later change that cannot finish such runs fails there.
 *
 *   npx tsx scripts/record-upgrade-history.ts <earlier git revision> <output directory>
 *
 * The earlier revision is checked out into a temporary git worktree (sharing this checkout's node_modules), its
 * workflows are bundled, and a worker on that bundle runs the downgrade until it waits for the callback; a worker
 * on the current code then takes it over and the callback completes it.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { WorkflowBundle } from '@temporalio/worker';
import {
  createReadWriteUser,
  decideOnConsentPage,
  followRedirect,
  startStack,
  waitForState,
} from '../harness/stack.js';
import { recordHistories } from '../harness/histories.js';

const [revision, directory] = process.argv.slice(2);
if (!revision || !directory) {
  console.error('usage: npx tsx scripts/record-upgrade-history.ts <earlier git revision> <output directory>');
  process.exit(2);
}
process.env.RECORD_HISTORIES = resolve(directory);

const checkout = join(mkdtempSync(join(tmpdir(), 'downgrade-upgrade-')), 'tree');
execFileSync('git', ['worktree', 'add', '--detach', checkout, revision], { stdio: 'inherit' });
try {
  symlinkSync(resolve('node_modules'), join(checkout, 'node_modules'));
  const earlier = (await import(pathToFileURL(join(checkout, 'src/worker.ts')).href)) as {
    bundleWorkflows(): Promise<WorkflowBundle>;
  };
  const earlierBundle = await earlier.bundleWorkflows();

  const stack = await startStack();
  try {
    const earlierWorker = await stack.startWorker({ workflowBundle: earlierBundle });
    const user = await createReadWriteUser(stack, `upgrade-${Date.now()}@example.com`);
    const { workflowId } = await stack.individual.start({
      sub: user.sub,
      userId: 'user-upgrade',
      refreshToken: user.refresh_token,
    });
    const waiting = await waitForState(stack, workflowId, (state) => state === 'awaiting_reauthorization');
    await earlierWorker.stop();

    const currentWorker = await stack.startWorker();
    const location = await decideOnConsentPage(waiting.authorizationUrl!, 'free_busy_google', {
      email: user.email,
    });
    assert.equal((await followRedirect(location)).status, 200);
    assert.equal((await stack.individual.waitForResult(workflowId)).state, 'completed');
    await currentWorker.stop();

    const [{ history }] = (await recordHistories(stack, [workflowId])) as [
      Awaited<ReturnType<typeof recordHistories>>[number],
    ];
    const events = history.events ?? [];
    const markers = events.filter((event) => event.markerRecordedEventAttributes).length;
    const activities = events.map((event) => event.activityTaskScheduledEventAttributes?.activityType?.name);
    console.log(
      `recorded ${workflowId} (${events.length} events: activities ${activities.filter(Boolean).join(', ')}; ` +
        `${markers} markers) into ${process.env.RECORD_HISTORIES}`,
    );
  } finally {
    await stack.stop();
  }
} finally {
  execFileSync('git', ['worktree', 'remove', '--force', checkout], { stdio: 'inherit' });
  rmSync(resolve(checkout, '..'), { recursive: true, force: true });
}
