import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
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

/**
 * Runs `work` while holding `lock` (flock(1), held by a child process, so that the lock goes with this process
 * however it ends).
 */
export async function withLock<T>(lock: string, work: () => Promise<T>): Promise<T> {
  const holder = spawn('flock', [lock, 'sh', '-c', 'echo locked; read _'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(holder, 'exit');
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: holder.stdout! }).once('line', () => resolve());
    void exited.then(([code]) => reject(new Error(`flock ${lock} exited with ${String(code)}`)));
  });
  try {
    return await work();
  } finally {
    holder.stdin!.end();
    await exited;
  }
}
