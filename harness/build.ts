import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * One build of dist/ (and one `npm pack` of it) at a time in this checkout, and no reading of dist/ while it is
 * built: CI runs its two Node lines' test runs side by side in one checkout.
 */
export const BUILD_LOCK = join(
  tmpdir(),
  `cronofy-downgrade-pack-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}.lock`,
);

/** The compiled service, as the image starts it. */
export const BUILT_MAIN = join(ROOT, 'dist', 'src', 'main.js');

let built: Promise<void> | undefined;

/**
 * dist/ built from the sources as they are (`npm run build`, unless scripts/build-once.sh finds it built from these
 * very sources), once per test process.
 */
export function ensureBuilt(): Promise<void> {
  built ??= promisify(execFile)('flock', [BUILD_LOCK, 'bash', 'scripts/build-once.sh'], {
    cwd: ROOT,
    maxBuffer: 16 * 1024 * 1024,
  }).then(() => undefined);
  return built;
}
