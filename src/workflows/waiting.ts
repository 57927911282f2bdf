import { condition } from '@temporalio/workflow';

/** Waits for `received()` until `deadline`, calling `remind` every `reminderIntervalMs` meanwhile. */
export async function waitWithReminders<T>(
  received: () => T | undefined,
  deadline: number,
  reminderIntervalMs: number,
  remind: () => Promise<void>,
): Promise<T | undefined> {
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) return received();
    if (await condition(() => received() !== undefined, Math.min(remaining, reminderIntervalMs)))
      return received();
    if (deadline - Date.now() > 0) await remind();
  }
}
