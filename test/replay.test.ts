import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { historyFromJson, replayHistories } from '../harness/histories.js';

/**
 * Histories recorded by released versions' test runs, from 1.0.0 on (`RECORD_HISTORIES=test/fixtures/histories/<version>
 * npm test -- test/individualDowngrade.test.ts test/observability.test.ts`: Individual downgrades, and an Enterprise
 * Connect domain with its users). Workflows started by a released version may still be running when the next one is
 * deployed, so the current code must replay every one of them; a change that cannot is put behind a patch.
 * `scripts/record-upgrade-history.ts` records a downgrade that one version starts and the next finishes.
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
