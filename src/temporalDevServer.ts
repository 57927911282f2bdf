import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { searchAttributeRegistrations } from './workflows/definitions.js';

const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The `temporal` CLI: TEMPORAL_CLI_PATH, one on PATH, or the project's pinned copy (installed on first use). */
export function temporalCliPath(): string {
  return execFileSync('bash', [resolve(projectRoot, 'scripts/ensure-temporal.sh')], {
    encoding: 'utf8',
  }).trim();
}

/**
 * Arguments after `temporal server start-dev` for this project's dev servers: its search attributes, registered at
 * start, and the search-attribute cache left to work as a real server's does. The CLI turns on
 * `system.forceSearchAttributesCacheRefreshOnRead` so that attributes created while it runs are seen at once; that
 * makes the server read its cluster metadata and namespace from SQLite on nearly every request. Every attribute
 * here exists from the start.
 *
 * Task queues get one partition: the server splits a task queue's rate limit evenly among its partitions, and a
 * partition with nothing queued wastes its share, so with the default four the Cronofy queue ran below the rate
 * its workers set. One server process gains nothing from more.
 *
 * The dev server has one history shard, and a shard reads its transfer queue (the tasks that hand workflow and
 * activity tasks to matching) at most `history.transferProcessorMaxPollRPS` times a second: at the default, a
 * callback's signal and the exchange it starts each waited for the next read before a worker could take them.
 */
export function devServerArgs(): string[] {
  return [
    ...searchAttributeRegistrations.flatMap((registration) => ['--search-attribute', registration]),
    '--dynamic-config-value',
    'system.forceSearchAttributesCacheRefreshOnRead=false',
    '--dynamic-config-value',
    'matching.numTaskqueueReadPartitions=1',
    '--dynamic-config-value',
    'matching.numTaskqueueWritePartitions=1',
    '--dynamic-config-value',
    'history.transferProcessorMaxPollRPS=200',
  ];
}

export interface DevServer {
  address: string;
  uiUrl: string;
  stop(): Promise<void>;
}

/**
 * Starts the official Temporal dev server with the Temporal UI on, and waits until healthy. Its data is kept in
 * `dbFile`, or only in memory without one (tests).
 */
export async function startDevServer(options: {
  port: number;
  uiPort: number;
  dbFile?: string;
  /** A remote codec the Temporal UI calls to show payloads decoded (`--ui-codec-endpoint`). */
  uiCodecEndpoint?: string;
  /** The server's own log level (default `warn`). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
}): Promise<DevServer> {
  if (options.dbFile) mkdirSync(dirname(options.dbFile), { recursive: true });
  const child: ChildProcess = spawn(
    temporalCliPath(),
    [
      'server',
      'start-dev',
      ...(options.dbFile ? ['--db-filename', options.dbFile] : []),
      '--ip',
      '127.0.0.1',
      '--port',
      String(options.port),
      '--ui-port',
      String(options.uiPort),
      '--log-level',
      options.logLevel ?? 'warn',
      ...(options.uiCodecEndpoint ? ['--ui-codec-endpoint', options.uiCodecEndpoint] : []),
      ...devServerArgs(),
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', resolveExit));
  const address = `127.0.0.1:${options.port}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`temporal dev server exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      await connection.healthService.check({});
      await connection.close();
      break;
    } catch (error) {
      if (Date.now() > deadline) {
        child.kill('SIGTERM');
        throw new Error(`temporal dev server did not become healthy on ${address}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address,
    uiUrl: `http://127.0.0.1:${options.uiPort}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
