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

/**
 * The compiler's errors for each workflow snippet, checked with the project's own options. One program holds every
 * snippet: the checker reads the proxies' types once.
 */
function typeErrors(bodies: string[]): string[][] {
  // Outside the checkout, so that no other tool ever sees it.
  const dir = mkdtempSync(join(tmpdir(), 'boundary-probe-'));
  const proxies = fileURLToPath(new URL('../src/workflows/activityProxies.js', import.meta.url));
  const files = bodies.map((body, index) => {
    const file = join(dir, `probe${index}.ts`);
    writeFileSync(
      file,
      `import { cronofyActivities, serviceActivities, serviceLocalActivities } from '${proxies}';\n` +
        `export async function probe(): Promise<void> {\n${body}\n}\n` +
        `void cronofyActivities; void serviceActivities; void serviceLocalActivities;\n`,
    );
    return file;
  });
  try {
    const config = ts.getParsedCommandLineOfConfigFile(
      fileURLToPath(new URL('../tsconfig.json', import.meta.url)),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} },
    );
    assert.ok(config);
    const program = ts.createProgram(files, config.options);
    return files.map((file) =>
      ts
        .getPreEmitDiagnostics(program, program.getSourceFile(file))
        .map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a Cronofy activity called through the service proxies does not type-check; through the Cronofy proxy it does', () => {
  const [throughCronofy, throughService] = typeErrors([
    `await cronofyActivities().revokeAuthorization({ sub: 'acc_probe' });`,
    `await serviceActivities().revokeAuthorization({ sub: 'acc_probe' });\n` +
      `await serviceLocalActivities().exchangeAuthorizationCode({ codeRef: 'c', workflowId: 'w' });`,
  ]);
  assert.deepEqual(throughCronofy, []);
  assert.equal(throughService!.length, 2, throughService!.join('\n'));
  assert.match(throughService![0]!, /Property 'revokeAuthorization' does not exist/);
  assert.match(throughService![1]!, /Property 'exchangeAuthorizationCode' does not exist/);
});

test("each activity is registered on one task queue: Cronofy's on the rate-limited one, the rest on the main one", () => {
  const { cronofy, service } = createActivitiesByQueue({} as ActivityDeps);
  assert.deepEqual(Object.keys(cronofy).sort(), [...CRONOFY_ACTIVITIES].sort());
  for (const name of CRONOFY_ACTIVITIES) assert.equal(name in service, false, name);
  assert.ok('notifyApplication' in service && 'startUsers' in service);
});
