/** The service (`src/main.ts`) in a process of its own, as deployed, for the benchmarks' stacks. */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitUntilAnswering } from '../harness/serviceProcess.js';
import { sleep } from './support.js';

export interface BenchServiceOptions {
  /** The service's configuration (SERVICE_ROLES and the rest), over this process's environment. */
  env: Record<string, string>;
  /** Ready once this answers: the callback server's /healthz, or a worker's metrics endpoint. */
  readyUrl: string;
  /** The process's standard output and error. */
  logFile: string;
  /** Another Node binary; this one's by default. */
  node?: string;
  /** Node flags before the script, such as --cpu-prof. */
  nodeArgs?: string[];
}

export interface BenchService {
  pid: number | undefined;
  /** SIGTERM, then SIGKILL if it has not ended within 30 s. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would, and waits until it is gone. */
  kill(): Promise<void>;
}

export async function startService(options: BenchServiceOptions): Promise<BenchService> {
  const out = openSync(options.logFile, 'w');
  const child: ChildProcess = spawn(
    options.node ?? process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', 'src/main.ts'],
    {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, ...options.env },
      stdio: ['ignore', out, out],
    },
  );
  closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  await waitUntilAnswering(child, options.readyUrl, { detail: () => `:\n${tail(options.logFile)}` });
  return {
    pid: child.pid,
    async stop() {
      if (running()) child.kill('SIGTERM');
      if (!(await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]))) {
        child.kill('SIGKILL');
        await exited;
      }
    },
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The last lines of a log file, for an error message. */
export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
