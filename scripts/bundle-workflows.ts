/**
 * `npm run bundle-workflows -- <file> [--tracing]`: writes the workflow bundle a worker would build as it starts,
 * for WORKFLOW_BUNDLE_PATH (an image builds it once; every worker then starts without bundling). `--tracing` when
 * the workers run with OTEL_EXPORTER_OTLP_ENDPOINT set: the worker refuses a bundle built for the other choice.
 */
import { writeFileSync } from 'node:fs';
import { bundleWorkflows } from '../src/worker.js';

const [file, ...flags] = process.argv.slice(2);
if (!file || flags.some((flag) => flag !== '--tracing')) {
  console.error('usage: npm run bundle-workflows -- <file> [--tracing]');
  process.exit(2);
}
const { code } = await bundleWorkflows({ tracing: flags.includes('--tracing') });
writeFileSync(file, code);
console.log(`workflow bundle written to ${file}`);
