/**
 * The workflow bundles a worker starts from, built ahead so that no worker runs webpack as it starts.
 *
 * - No arguments (`npm run build` runs the compiled copy, `node dist/scripts/bundle-workflows.js`, after tsc):
 *   writes `dist/workflow-bundle.js` and `dist/workflow-bundle.traced.js` from the compiled workflow code; a worker
 *   started from `dist/` takes the one for its tracing choice by itself (`defaultWorkflowBundle` in src/worker.ts).
 * - `npm run bundle-workflows -- <file> [--tracing]`: one bundle, for WORKFLOW_BUNDLE_PATH. `--tracing` when the
 *   workers run with OTEL_EXPORTER_OTLP_ENDPOINT set: the worker refuses a bundle built for the other choice.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { builtWorkflowBundlePath, bundleWorkflows } from '../src/worker.js';

const [file, ...flags] = process.argv.slice(2);
if (file?.startsWith('-') || flags.some((flag) => flag !== '--tracing')) {
  console.error('usage: npm run bundle-workflows -- [<file> [--tracing]]');
  process.exit(2);
}
const bundles = file
  ? [{ path: file, tracing: flags.includes('--tracing') }]
  : [false, true].map((tracing) => ({ path: builtWorkflowBundlePath({ tracing }), tracing }));
for (const { path, tracing } of bundles) {
  const { code } = await bundleWorkflows({ tracing });
  mkdirSync(dirname(path), { recursive: true });
  // Whole or not at all: a worker starting meanwhile reads the old bundle or the new one.
  writeFileSync(`${path}.${process.pid}.tmp`, code);
  renameSync(`${path}.${process.pid}.tmp`, path);
  console.log(`workflow bundle${tracing ? ' (traced)' : ''} written to ${path}`);
}
