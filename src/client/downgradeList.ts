import type { Client } from '@temporalio/client';
import { decodeTypedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes.js';
import { searchAttributes, type DowngradeState } from '../workflows/definitions.js';

/** One person's downgrade as the list shows it: what its search attributes and its execution say. */
export interface ListedDowngrade {
  workflowId: string;
  sub?: string;
  state?: string;
  startedAt?: string;
  closedAt?: string;
}

export interface DowngradePage {
  downgrades: ListedDowngrade[];
  /** Pass it back for the next page; absent on the last. */
  nextCursor?: string;
}

/**
 * A page of the Individual downgrades Temporal's visibility holds, newest first, optionally in one state: the
 * list the Temporal UI shows for `DowngradeKind = "individual"`. The cursor is Temporal's page token.
 */
export async function listIndividualDowngrades(
  temporal: Client,
  options: { state?: DowngradeState; pageSize: number; cursor?: string },
): Promise<DowngradePage> {
  const query = [
    `${searchAttributes.kind.name} = 'individual'`,
    ...(options.state ? [`${searchAttributes.state.name} = '${options.state}'`] : []),
  ].join(' AND ');
  const page = await temporal.workflowService.listWorkflowExecutions({
    namespace: temporal.options.namespace,
    query,
    pageSize: options.pageSize,
    nextPageToken: options.cursor ? Buffer.from(options.cursor, 'base64url') : undefined,
  });
  const isoOf = (time: { seconds?: { toString(): string } | null } | null | undefined) =>
    time?.seconds ? new Date(Number(time.seconds.toString()) * 1000).toISOString() : undefined;
  return {
    downgrades: (page.executions ?? []).map((execution) => {
      const attributes = decodeTypedSearchAttributes(execution.searchAttributes?.indexedFields);
      return {
        workflowId: execution.execution?.workflowId ?? '',
        sub: attributes.get(searchAttributes.sub),
        state: attributes.get(searchAttributes.state),
        startedAt: isoOf(execution.startTime),
        closedAt: isoOf(execution.closeTime),
      };
    }),
    nextCursor: page.nextPageToken?.length
      ? Buffer.from(page.nextPageToken).toString('base64url')
      : undefined,
  };
}
