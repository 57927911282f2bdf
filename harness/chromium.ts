/**
 * Debian's Chromium for the browser tests (CHROMIUM_PATH to use another). `npm test` installs it through
 * scripts/prepare-tests.sh; without it the browser tests fail, they never skip.
 */
import { accessSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Kept as artifacts of the run. */
export const SCREENSHOTS = fileURLToPath(new URL('../test-artifacts/screenshots/', import.meta.url));

/** Why the browser tests cannot run, or undefined when Chromium is there. */
export function missingChromium(): Error | undefined {
  try {
    accessSync(CHROMIUM_PATH, constants.X_OK);
    return undefined;
  } catch {
    return new Error(
      `Chromium is not executable at ${CHROMIUM_PATH}. Install it (as root: ` +
        '`apt-get update && apt-get install -y chromium`, or run `npm test`, whose pretest does it) ' +
        'or point CHROMIUM_PATH at a Chromium binary.',
    );
  }
}

/** Launches headless Chromium, made ready for screenshots. */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  await mkdir(SCREENSHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      ...extraArgs,
    ],
    timeout: 30_000,
  });
}
