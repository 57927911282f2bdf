/**
 * Workflows that do nothing, for yardsticks: how fast this server and worker run child workflows with the same
 * number in flight as the enterprise downgrade's window (`bench/enterprise.ts --lifted`), and what signals that
 * wake a workflow cost (`bench/callbacks.ts`).
 */
import { condition, executeChild, setHandler, workflowInfo } from '@temporalio/workflow';
import { reauthorizationCallback } from '../src/workflows/definitions.js';

export async function trivialChild(): Promise<number> {
  return 1;
}

/** Runs `count` trivial children, keeping `window` of them in flight; returns how many completed. */
export async function trivialParent(input: { count: number; window: number }): Promise<number> {
  const { workflowId } = workflowInfo();
  let next = 0;
  let completed = 0;
  const lane = async () => {
    while (next < input.count) {
      const position = next++;
      const result = await executeChild(trivialChild, { workflowId: `${workflowId}-child-${position}` });
      completed += result;
    }
  };
  await Promise.all(Array.from({ length: Math.min(input.window, input.count) }, lane));
  return completed;
}

/**
 * The waking yardstick of `bench/callbacks.ts`: receives the callbacks' signal and does nothing with it, so each
 * signal costs the server what any signal that wakes a workflow costs (a workflow task scheduled, dispatched to
 * the worker and completed with no command) and nothing of the downgrade's own work.
 */
export async function signalSink(): Promise<void> {
  setHandler(reauthorizationCallback, () => {});
  await condition(() => false); // until the benchmark terminates it
}
