/**
 * The thin TypeScript client of the HTTP API (clients/typescript, `cronofy-downgrade-api-client`): its generated
 * types are what the API's routes make now; its packed tarball installs into an empty project with at most 50
 * packages; and a backend in that project, importing only the installed package, type-checks against its
 * declarations and drives a real API on the tests' stack.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { startApiServer } from '../src/api/server.js';
import { createReadWriteUser, startStack, type RunningWorker, type Stack } from '../harness/stack.js';
import { CLIENT_TYPES_PATH, generateClientTypes } from '../scripts/generate-client-types.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLIENT_DIR = join(ROOT, 'clients', 'typescript');
/** `npm pack` builds the client's dist/ (prepack): another test run in this checkout may be building it too. */
const PACK_LOCK = join(
  tmpdir(),
  `cronofy-downgrade-api-client-pack-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`,
);
const MAX_PACKAGES = 50;

/**
 * A backend as a user of the client writes it: nothing but the installed package. It prints what it saw as JSON.
 * `refused` is never called: it is there for the type-check, which fails if the generated types let it through.
 */
const BACKEND = `import { createApiClient, idempotencyKey, type Problem } from 'cronofy-downgrade-api-client';

const api = createApiClient({ baseUrl: process.env.API_URL!, apiKey: process.env.API_KEY! });

// One key per piece of work: a retry of this start sends the same one and is answered once.
const start = { body: { sub: process.env.SUB!, userId: 'backend-42' }, params: { header: { 'idempotency-key': idempotencyKey() } } };
const started = await api.POST('/v1/downgrades', start);
if (!started.data) throw new Error(\`the start was refused: \${JSON.stringify(started.error)}\`);
const { workflowId, authorizationUrl } = started.data;
const again = await api.POST('/v1/downgrades', start);

const status = await api.GET('/v1/downgrades/{workflowId}', { params: { path: { workflowId } } });
if (!status.data) throw new Error(\`no status: \${JSON.stringify(status.error)}\`);

const missing = await api.GET('/v1/downgrades/{workflowId}', {
  params: { path: { workflowId: 'downgrade-individual-acc_nobody' } },
});
const problem: Problem | undefined = missing.error;

console.log(
  JSON.stringify({
    started: { status: started.response.status, workflowId, authorizationUrl },
    replayed: {
      status: again.response.status,
      header: again.response.headers.get('idempotent-replayed'),
      workflowId: again.data?.workflowId,
    },
    status: { state: status.data.state, sub: status.data.sub, userId: status.data.userId, prompt: status.data.prompt },
    missing: { status: missing.response.status, code: problem?.code, title: problem?.title, data: missing.data ?? null },
  }),
);

export async function refused(): Promise<void> {
  // @ts-expect-error: no such route
  await api.GET('/v1/no-such-route');
  // @ts-expect-error: a start names the person's sub
  await api.POST('/v1/downgrades', { body: { userId: 'backend-42' } });
  // @ts-expect-error: a sub is a string
  await api.POST('/v1/downgrades', { body: { sub: 42 } });
  // @ts-expect-error: a status needs its workflowId
  await api.GET('/v1/downgrades/{workflowId}');
  const { data, error } = await api.GET('/v1/downgrades/{workflowId}', { params: { path: { workflowId: 'x' } } });
  // @ts-expect-error: a state is one of the API's
  if (data) data.state satisfies 'no_such_state';
  // @ts-expect-error: a problem's code is one of the API's
  if (error) error.code satisfies 'no_such_code';
}
`;

let scratch: string;
/** The scratch project with the client installed, once the package test has installed it. */
let app: string | undefined;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cronofy-downgrade-api-client-'));
});
after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

test("the client's committed types are what `npm run client:types` makes from the API now", async () => {
  const committed = await readFile(CLIENT_TYPES_PATH, 'utf8').catch(() => '');
  const generated = await generateClientTypes();
  if (committed === generated) return;
  const committedLines = committed.split('\n');
  const generatedLines = generated.split('\n');
  const line = generatedLines.findIndex((text, index) => text !== committedLines[index]);
  assert.fail(
    `clients/typescript/src/openapi.ts differs from the API's OpenAPI document: run \`npm run client:types\` ` +
      `(first difference at line ${line + 1}: committed ${JSON.stringify(committedLines[line])}, ` +
      `generated ${JSON.stringify(generatedLines[line])})`,
  );
});

test(
  `the packed client installs into an empty project with at most ${MAX_PACKAGES} packages`,
  { timeout: 180_000 },
  async (t) => {
    const packs = join(scratch, 'packs');
    await mkdir(packs);
    await run('flock', [PACK_LOCK, 'npm', 'pack', '--pack-destination', packs, '--silent'], {
      cwd: CLIENT_DIR,
    });
    const tarball = (await readdir(packs)).find((name) => name.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a tarball');
    t.diagnostic(`${tarball}: ${(await stat(join(packs, tarball))).size} bytes`);

    const project = join(scratch, 'app');
    await mkdir(project);
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'backend', private: true, type: 'module' }),
    );
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(packs, tarball)], {
      cwd: project,
    });

    const { stdout } = await run('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: project });
    // The first line is the project itself.
    const installed = stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((path) => path.slice(join(project, 'node_modules').length + 1));
    t.diagnostic(`${installed.length} packages: ${installed.join(', ')}`);
    assert.ok(installed.includes('cronofy-downgrade-api-client'), installed.join(', '));
    assert.ok(
      installed.length <= MAX_PACKAGES,
      `${installed.length} packages installed (at most ${MAX_PACKAGES}): ${installed.join(', ')}`,
    );
    app = project;
  },
);

describe('a backend with nothing but the installed client', () => {
  let stack: Stack;
  let worker: RunningWorker;
  let api: { app: FastifyInstance; url: string };
  let apiKey: string;

  before(
    async () => {
      stack = await startStack();
      worker = await stack.startWorker();
      // The API as the service builds it, over the stack's database and Temporal.
      api = await startApiServer(stack.api, { host: '127.0.0.1', port: 0, logLevel: 'silent' });
      const scopes = ['downgrades:write', 'downgrades:read'] as const;
      apiKey = (await stack.api.keys.create('api client backend', [...scopes])).key;
    },
    { timeout: 180_000 },
  );
  after(async () => {
    await api?.app.close();
    await worker?.stop();
    await stack?.stop();
  });

  test(
    'type-checks against the package, starts a downgrade, reads it and reads a typed problem',
    { timeout: 180_000 },
    async () => {
      assert.ok(app, 'the packed client was installed by the test before');
      await writeFile(join(app, 'backend.ts'), BACKEND);
      await writeFile(
        join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            lib: ['ES2022'],
            strict: true,
            // Node's types from the service's own node_modules: the project installed the client alone.
            typeRoots: [join(ROOT, 'node_modules', '@types')],
            types: ['node'],
          },
          files: ['backend.ts'],
        }),
      );
      // The service's TypeScript, against the installed package's declarations (no skipLibCheck); then compiles.
      await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], {
        cwd: app,
      }).catch((error: { stdout?: string }) =>
        assert.fail(`the backend does not type-check:\n${error.stdout}`),
      );

      const user = await createReadWriteUser(stack, `api-client-${Date.now()}@example.com`);
      const { stdout } = await run(process.execPath, ['backend.js'], {
        cwd: app,
        env: { PATH: process.env.PATH, API_URL: api.url, API_KEY: apiKey, SUB: user.sub },
      });
      const seen = JSON.parse(stdout) as {
        started: { status: number; workflowId: string; authorizationUrl: string };
        replayed: { status: number; header: string | null; workflowId: string };
        status: { state: string; sub: string; userId: string; prompt: number };
        missing: { status: number; code: string; title: string; data: unknown };
      };
      try {
        assert.equal(seen.started.status, 201);
        assert.ok(
          seen.started.authorizationUrl.startsWith(stack.simulator.url),
          seen.started.authorizationUrl,
        );
        assert.deepEqual(seen.replayed, { status: 201, header: 'true', workflowId: seen.started.workflowId });
        assert.deepEqual(seen.status, {
          state: 'awaiting_reauthorization',
          sub: user.sub,
          userId: 'backend-42',
          prompt: 1,
        });
        assert.deepEqual(seen.missing, {
          status: 404,
          code: 'downgrade_not_found',
          title: 'No such downgrade',
          data: null,
        });
        // The service sees the run the backend started.
        assert.equal((await stack.individual.get(seen.started.workflowId)).sub, user.sub);
      } finally {
        await stack.individual.cancel(seen.started.workflowId);
      }
    },
  );
});
