/**
 * The yardstick for `bench/enterprise.ts --lifted`: how fast this server and worker run child workflows that do
 * nothing, with the same number in flight as the enterprise downgrade's window.
 */
import { executeChild, workflowInfo } from '@temporalio/workflow';

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
