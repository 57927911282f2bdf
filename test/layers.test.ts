import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');

let scratch: string;

/** A tree laid out like the project, holding only the files given, checked with the project's own rules. */
async function cruise(files: Record<string, string>): Promise<{ ok: boolean; output: string }> {
  const tree = await mkdtemp(join(scratch, 'tree-'));
  await copyFile(join(ROOT, '.dependency-cruiser.cjs'), join(tree, '.dependency-cruiser.cjs'));
  await writeFile(join(tree, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext' } }));
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(tree, path)), { recursive: true });
    await writeFile(join(tree, path), text);
  }
  const roots = [...new Set(Object.keys(files).map((path) => path.split('/')[0]!))];
  try {
    const { stdout } = await run(DEPCRUISE, [...roots, '--config', '.dependency-cruiser.cjs'], { cwd: tree });
    return { ok: true, output: stdout };
  } catch (error) {
    return { ok: false, output: String((error as { stdout?: string }).stdout ?? error) };
  }
}

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'cronofy-downgrade-layers-'));
});
after(() => rm(scratch, { recursive: true, force: true }));

test('imports that point the right way pass', async () => {
  const result = await cruise({
    'src/cronofy/client.ts': "export const host = 'https://api.cronofy.com';\n",
    'src/activities/revoke.ts': "import { host } from '../cronofy/client.js';\nexport const at = host;\n",
    'src/workflows/downgrade.ts':
      "import type { at } from '../activities/revoke.js';\nexport type At = typeof at;\n",
  });
  assert.ok(result.ok, result.output);
});

test('lint fails on each kind of wrong-way import, naming the rule and the importing file', async () => {
  // One tree holding one wrong-way import of each kind, each in files of its own.
  const cases: Array<[rule: string, from: string, files: Record<string, string>]> = [
    [
      'cronofy-without-temporal',
      'src/cronofy/client.ts',
      { 'src/cronofy/client.ts': "import '@temporalio/client';\n" },
    ],
    [
      'workflows-without-io',
      'src/workflows/downgrade.ts',
      {
        'src/activities/revoke.ts': 'export const revoke = () => 1;\n',
        'src/workflows/downgrade.ts': "import { revoke } from '../activities/revoke.js';\nrevoke();\n",
      },
    ],
    ['workflows-without-node', 'src/workflows/clock.ts', { 'src/workflows/clock.ts': "import 'node:fs';\n" }],
    [
      'bench-and-scripts-without-tests',
      'bench/run.ts',
      {
        'test/helper.ts': 'export const helper = 1;\n',
        'bench/run.ts': "import { helper } from '../test/helper.js';\nconsole.log(helper);\n",
      },
    ],
    [
      'service-without-simulator',
      'src/worker.ts',
      {
        'simulator/server.ts': 'export const start = () => 1;\n',
        'src/worker.ts': "import { start } from '../simulator/server.js';\nstart();\n",
      },
    ],
    [
      'no-circular',
      'src/a.ts',
      {
        'src/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
        'src/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
      },
    ],
    [
      'client-entry-point-stays-light',
      'src/client.ts',
      {
        'src/store/database.ts': 'export const open = () => 1;\n',
        'src/client.ts': "import { open } from './store/database.js';\nopen();\n",
      },
    ],
  ];
  const files = cases.flatMap(([, , files]) => Object.entries(files));
  assert.equal(new Set(files.map(([path]) => path)).size, files.length, 'each case has files of its own');
  const result = await cruise(Object.fromEntries(files));
  assert.equal(result.ok, false, 'lint passed');
  // Colours, where the output is a terminal or CI asks for them, are not part of the message.
  const output = result.output.replace(/\x1b\[[0-9;]*m/g, '');
  for (const [rule, from] of cases) {
    assert.ok(output.includes(`error ${rule}: ${from}`), `${rule} (${from}): ${output}`);
  }
});
