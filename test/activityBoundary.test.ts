/**
 * Cronofy's rate limit is kept by the Cronofy task queue alone, so a Cronofy activity must not be callable any
 * other way: the service's proxies do not offer one (the compiler says so), and the main task queue's worker does
 * not register one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import ts from 'typescript';
import { CRONOFY_ACTIVITIES, createActivitiesByQueue } from '../src/activities/index.js';
import type { ActivityDeps } from '../src/activities/deps.js';

/** The compiler's errors for a workflow snippet, checked with the project's own options. */
function typeErrors(body: string): string[] {
  // Outside the checkout, so that no other tool ever sees it.
  const dir = mkdtempSync(join(tmpdir(), 'boundary-probe-'));
  const file = join(dir, 'probe.ts');
  const proxies = fileURLToPath(new URL('../src/workflows/activityProxies.js', import.meta.url));
  writeFileSync(
    file,
    `import { cronofyActivities, serviceActivities, serviceLocalActivities } from '${proxies}';\n` +
      `export async function probe(): Promise<void> {\n${body}\n}\n` +
      `void cronofyActivities; void serviceActivities; void serviceLocalActivities;\n`,
  );
  try {
    const config = ts.getParsedCommandLineOfConfigFile(
      fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
    );
    assert.ok(config);
    const program = ts.createProgram([file], config.options);
    return ts
      .getPreEmitDiagnostics(program, program.getSourceFile(file))
      .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a Cronofy activity called through the service proxies does not type-check; through the Cronofy proxy it does', () => {
  assert.deepEqual(typeErrors(`await cronofyActivities().revokeAuthorization({ sub: 'acc_probe' });`), []);
  const errors = typeErrors(
    `await serviceActivities().revokeAuthorization({ sub: 'acc_probe' });\n` +
      `await serviceLocalActivities().exchangeAuthorizationCode({ codeRef: 'c', workflowId: 'w' });`,
  );
  assert.equal(errors.length, 2, errors.join('\n'));
  assert.match(errors[0]!, /Property 'revokeAuthorization' does not exist/);
  assert.match(errors[1]!, /Property 'exchangeAuthorizationCode' does not exist/);
});

test("each activity is registered on one task queue: Cronofy's on the rate-limited one, the rest on the main one", () => {
  const { cronofy, service } = createActivitiesByQueue({} as ActivityDeps);
  assert.deepEqual(Object.keys(cronofy).sort(), [...CRONOFY_ACTIVITIES].sort());
  for (const name of CRONOFY_ACTIVITIES) assert.equal(name in service, false, name);
  assert.ok('notifyApplication' in service && 'startUsers' in service);
});
