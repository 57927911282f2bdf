import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { historyFromJson, replayHistories } from '../harness/histories.js';

/**
 * Histories recorded from earlier versions' test runs (`RECORD_HISTORIES=test/fixtures/histories/<version> node
 * --import tsx --test test/individualDowngrade.test.ts`, and test/observability.test.ts for an Enterprise Connect
 * parent and its users, traced). Workflows started by those versions may still be running in production, so the
 * current code must replay every one of them. `upgrade-v2-to-v3` holds a downgrade that v2's workflow code started
 * and v3's finished, as a rolling deploy leaves it (`npx tsx scripts/record-upgrade-history.ts d50a65e <dir>`): its
 * first webhook event is an activity and its last a local activity, behind the `webhook-as-local-activity` patch.
 */
const root = join(import.meta.dirname, 'fixtures', 'histories');

test('histories recorded by earlier versions replay against the current workflow code', async () => {
  const histories = readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.json'))
    .map((file) => ({
      // The recorded workflow's own id: a parent derives its children's ids from it.
      workflowId: basename(file, '.json'),
      history: historyFromJson(readFileSync(join(root, file), 'utf8')),
    }));
  await replayHistories(histories);
});
