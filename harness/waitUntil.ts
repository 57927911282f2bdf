/** Thrown by a check to end the wait at once: what it waits for can no longer happen. */
export class WaitAbandoned extends Error {
  override name = 'WaitAbandoned';
}

/**
 * Polls `check` until it answers something other than undefined or false, and answers that. A check that throws is
 * asked again (a server still starting, a run not yet started), unless it throws WaitAbandoned. Fails with `what`,
 * and the check's last error, once `timeoutMs` has passed: a ceiling for a run that went wrong, never what a test
 * decides by.
 */
export async function waitUntil<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  options: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 240_000);
  let lastError: unknown;
  for (;;) {
    const value = await Promise.resolve()
      .then(check)
      .catch((error: unknown) => {
        if (error instanceof WaitAbandoned)
          throw new Error(`gave up waiting until ${what}: ${error.message}`);
        lastError = error;
        return undefined;
      });
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      const last = lastError === undefined ? '' : `; the check last threw: ${String(lastError)}`;
      throw new Error(`timed out waiting until ${what}${last}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
