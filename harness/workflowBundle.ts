import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkflowBundle } from '@temporalio/worker';
import { bundleWorkflows } from '../src/worker.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));
const LOCKFILE = fileURLToPath(new URL('../package-lock.json', import.meta.url));
const CACHE = join(tmpdir(), 'cronofy-downgrade-workflow-bundles');

/**
 * Every source file under src/ (the workflow code and all it may import), hashed with its path, the checkout's
 * folder and the lockfile (the SDK's workflow runtime is bundled too).
 */
function sourceHash(): string {
  const hash = createHash('sha256').update(SRC).update(readFileSync(LOCKFILE));
  for (const file of readdirSync(SRC, { recursive: true, encoding: 'utf8' }).sort()) {
    if (!file.endsWith('.ts')) continue;
    hash.update(file).update(readFileSync(join(SRC, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

/**
 * The workflow bundle the service's worker builds, built once per version of the source and reused by every test
 * file after: webpack's bundling was a large part of the suite's CPU. A changed file gives another hash, so a
 * stale bundle is never used; the file is written whole before it is renamed into place.
 */
export async function testWorkflowBundle(options: { tracing?: boolean } = {}): Promise<WorkflowBundle> {
  return { code: readFileSync(await testWorkflowBundlePath(options), 'utf8') };
}

/** The same bundle's file, for a service process started with WORKFLOW_BUNDLE_PATH. */
export async function testWorkflowBundlePath(options: { tracing?: boolean } = {}): Promise<string> {
  const file = join(CACHE, `${sourceHash()}${options.tracing ? '-traced' : ''}.js`);
  if (existsSync(file)) return file;
  const { code } = await bundleWorkflows(options);
  mkdirSync(CACHE, { recursive: true });
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, code);
  renameSync(partial, file);
  return file;
}
