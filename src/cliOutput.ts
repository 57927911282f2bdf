/** What the CLI prints of a run: its status, its progress while watched, a preview. */
import { setTimeout as sleep } from 'node:timers/promises';
import type { z } from 'zod';
import type { RunPreview, RunStatus as RunStatusSchema } from './api/operatedRunSchemas.js';
import { operatedRunHasEnded } from './workflows/endings.js';

/** What `status` shows of a domain's downgrade or a campaign: the API's status of a run (`GET /v1/{kind}/{name}`). */
export type RunStatus = z.infer<typeof RunStatusSchema>;

function countsOf(status: RunStatus): string {
  return Object.entries(status.counts)
    .map(([state, count]) => `${state} ${count}`)
    .join(', ');
}

export function describe(label: string, status: RunStatus): string {
  const counts = countsOf(status);
  const lines = [
    `${label}: ${status.phase} (run ${status.runs})`,
    `users: ${status.started} of ${status.userCount} started, ${status.inFlight} in flight${counts ? `; ${counts}` : ''}`,
  ];
  const { approval, paused } = status;
  if (approval?.decidedBy) {
    lines.push(`decided by ${approval.decidedBy} at ${approval.decidedAt} (preview ${approval.previewId})`);
  } else if (approval) {
    lines.push(`awaiting approval of preview ${approval.previewId} until ${approval.expiresAt}`);
  }
  if (paused) lines.push(`paused by ${paused.by} at ${paused.at}: ${paused.reason ?? ''}`);
  const consent = status.administrator?.authorizationUrl;
  if (consent) lines.push(`administrator's consent link: ${consent}`);
  if (status.reason) lines.push(`reason: ${status.reason}`);
  return lines.join('\n');
}

/** Shows a run's progress each time it changes, until the run ends; answers its last status. */
export async function watchRun(
  read: () => Promise<RunStatus>,
  show: (status: RunStatus, line: string) => void,
  pollMs = 1_000,
): Promise<RunStatus> {
  let last = '';
  for (;;) {
    const status = await read();
    const line = progressBar(status);
    if (line !== last) show(status, line);
    last = line;
    if (operatedRunHasEnded(status.phase)) return status;
    await sleep(pollMs);
  }
}

function progressBar(status: RunStatus, width = 30): string {
  const finished = Object.values(status.counts).reduce((sum, count) => sum + count, 0);
  const done = status.userCount ? Math.round((finished / status.userCount) * width) : 0;
  const counts = countsOf(status);
  return (
    `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${finished}/${status.userCount} · ${status.phase}` +
    `${counts ? ` · ${counts}` : ''}${status.paused ? ` · paused by ${status.paused.by}` : ''}`
  );
}

export function previewText(
  previewId: string,
  label: string,
  preview: Pick<
    z.infer<typeof RunPreview>,
    'users' | 'cronofyCalls' | 'estimatedSeconds' | 'cronofyCallsPerSecond' | 'warnings'
  >,
  extra: string[] = [],
): string {
  return [
    `preview ${previewId} of ${label}`,
    `users: ${preview.users.count} (${preview.users.duplicates} duplicates and ${preview.users.malformed} malformed dropped)`,
    ...extra,
    `Cronofy calls: ${preview.cronofyCalls.total ?? 0}, about ${preview.estimatedSeconds} s at ${preview.cronofyCallsPerSecond}/s`,
    ...preview.warnings.map((warning) => `warning: ${warning}`),
  ].join('\n');
}
