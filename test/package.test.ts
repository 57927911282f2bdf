import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BUILD_LOCK, withLock } from '../harness/build.js';
import {
  createReadWriteUser,
  startStack,
  TEST_PAYLOAD_ENCRYPTION_KEYS,
  waitForState,
  type RunningWorker,
  type Stack,
} from '../harness/stack.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A backend as a user of the package writes it: only `cronofy-downgrade/client` and Temporal's client. */
const BACKEND = `import { Client, Connection } from '@temporalio/client';
import { IndividualRuns, payloadEncryption } from 'cronofy-downgrade/client';

const { dataConverter } = payloadEncryption({ PAYLOAD_ENCRYPTION_KEYS: process.env.PAYLOAD_ENCRYPTION_KEYS! });
const connection = await Connection.connect({ address: process.env.TEMPORAL_ADDRESS! });
const individual = new IndividualRuns({
  temporal: new Client({ connection, dataConverter }),
  taskQueue: process.env.TASK_QUEUE!,
  defaults: { deadlineMs: 86_400_000, reminderIntervalMs: 3_600_000, maxPrompts: 3 },
});
// A request handler would redirect the person to authorizationUrl at once.
const { workflowId, authorizationUrl } = await individual.startWithLink({ sub: process.env.SUB! });
const { state } = await individual.get(workflowId);
console.log(JSON.stringify({ workflowId, state, authorizationUrl }));
await connection.close();
`;

const TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    strict: true,
    skipLibCheck: true,
    types: ['node'],
  },
  files: ['backend.ts'],
};

/**
 * An empty project with the packed package installed, the backend type-checked and compiled against it, and the
 * worker and database drivers taken away (the client entry point must load neither). None of it depends on the Node
 * line, so it is made once for the tarball, under a lock (CI's two lanes share one checkout and temporary folder),
 * and each test run runs the backend on its own Node; a project made for another tarball is removed.
 */
async function installedBackend(tarball: string): Promise<string> {
  const hash = createHash('sha256')
    .update(await readFile(tarball))
    .update(BACKEND)
    .update(JSON.stringify(TSCONFIG))
    .digest('hex')
    .slice(0, 16);
  const prefix = 'cronofy-downgrade-package-app-';
  const app = join(tmpdir(), `${prefix}${hash}`);
  return withLock(join(tmpdir(), `${prefix}.lock`), async () => {
    if (existsSync(join(app, 'backend.js'))) return app;
    for (const stale of (await readdir(tmpdir())).filter((name) => name.startsWith(prefix))) {
      if (!stale.endsWith('.lock')) await rm(join(tmpdir(), stale), { recursive: true, force: true });
    }
    const building = `${app}.building`;
    await mkdir(building);
    await writeFile(
      join(building, 'package.json'),
      JSON.stringify({ name: 'backend', private: true, type: 'module' }),
    );
    await writeFile(join(building, 'tsconfig.json'), JSON.stringify(TSCONFIG));
    await writeFile(join(building, 'backend.ts'), BACKEND);
    const { devDependencies } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--ignore-scripts',
        tarball,
        `typescript@${devDependencies.typescript}`,
        '@types/node@20',
      ],
      { cwd: building },
    );
    // Type-checks against the package's declarations, then compiles.
    await run(join(building, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: building });
    for (const heavy of ['@temporalio/worker', 'pg', '@electric-sql/pglite']) {
      await rm(join(building, 'node_modules', heavy), { recursive: true, force: true });
    }
    await rename(building, app);
    return app;
  });
}

let scratch: string;
let stack: Stack;
let worker: RunningWorker;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cronofy-downgrade-package-'));
  stack = await startStack();
  worker = await stack.startWorker();
});
after(async () => {
  await worker?.stop();
  await stack?.stop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test(
  'the packed package installs into an empty project, type-checks a backend and starts a downgrade',
  { timeout: 240_000 },
  async () => {
    // dist/ as `npm pack` would build it (prepack), built once for every test run in this checkout (CI runs Node 22
    // and 24 side by side in one; scripts/build-once.sh), under the lock that keeps builds and packs one at a time.
    await run(
      'flock',
      [
        BUILD_LOCK,
        'sh',
        '-c',
        `bash scripts/build-once.sh && npm pack --ignore-scripts --silent --pack-destination "$0"`,
        scratch,
      ],
      { cwd: ROOT },
    );
    const tarball = (await readdir(scratch)).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a tarball');

    const app = await installedBackend(join(scratch, tarball));

    const user = await createReadWriteUser(stack, `package-${Date.now()}@example.com`);
    const { stdout } = await run('node', ['backend.js'], {
      cwd: app,
      env: {
        ...process.env,
        PAYLOAD_ENCRYPTION_KEYS: TEST_PAYLOAD_ENCRYPTION_KEYS,
        TEMPORAL_ADDRESS: stack.env.address,
        TASK_QUEUE: stack.taskQueue,
        SUB: user.sub,
      },
    });
    const started = JSON.parse(stdout) as { workflowId: string; state: string; authorizationUrl: string };
    assert.equal(started.state, 'awaiting_reauthorization');
    assert.ok(started.authorizationUrl.startsWith(stack.simulator.url), started.authorizationUrl);

    // The service's own client sees the same run.
    const status = await waitForState(
      stack,
      started.workflowId,
      (state) => state === 'awaiting_reauthorization',
    );
    assert.equal(status.authorizationUrl, started.authorizationUrl);
    await stack.individual.cancel(started.workflowId);
  },
);
