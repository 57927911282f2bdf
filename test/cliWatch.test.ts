/** `status --watch` returns for every way a domain or a campaign can end: the endings are listed once. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { watchRun, type RunStatus } from '../src/cliOutput.js';
import { CAMPAIGN_ENDINGS } from '../src/workflows/campaignDefinitions.js';
import { ENTERPRISE_ENDINGS } from '../src/workflows/enterpriseDefinitions.js';

/** A run's status as the API answers it (`GET /v1/{kind}/{name}`), in `phase`. */
function status(phase: string): RunStatus {
  return {
    kind: 'domains',
    name: 'example.org',
    workflowId: 'downgrade-enterprise-example.org',
    phase,
    counts: {},
    userCount: 2,
    started: 2,
    inFlight: 0,
    runs: 1,
  };
}

test('status --watch returns for every ending of a domain and of a campaign, and not before', async () => {
  const endings = [...new Set([...ENTERPRISE_ENDINGS, ...CAMPAIGN_ENDINGS])];
  assert.ok(endings.includes('no_access') && endings.includes('other_account'));
  for (const ending of endings) {
    const phases = ['awaiting_approval', 'moving_users', 'paused', ending];
    let reads = 0;
    const shown: string[] = [];
    const last = await watchRun(
      async () => {
        const phase = phases[reads++];
        if (phase === undefined) throw new Error(`still watching after ${ending}`);
        return status(phase);
      },
      (_status, line) => shown.push(line),
      0,
    );
    assert.equal(last.phase, ending);
    assert.equal(reads, phases.length, `${ending}: it read until the ending, and stopped there`);
    assert.equal(shown.length, phases.length);
  }
});
