import { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerArgs, temporalCliPath } from '../src/temporalDevServer.js';

type LocalOptions = NonNullable<Parameters<typeof TestWorkflowEnvironment.createLocal>[0]>;

/**
 * A Temporal dev server of its own for a test or a benchmark: the pinned Temporal CLI with the service's flags (its
 * search attributes, its dynamic config), torn down with the environment.
 */
export function startTemporalServer(
  options: {
    /** More flags for `temporal server start-dev` (a metrics port, a database file). */
    extraArgs?: string[];
    /** The environment's client: its data converter, its interceptors. */
    client?: LocalOptions['client'];
  } = {},
): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: temporalCliPath() },
      ip: '127.0.0.1',
      extraArgs: [...devServerArgs(), ...(options.extraArgs ?? [])],
    },
    client: options.client,
  });
}
