/**
 * What the Enterprise benchmarks share: the service's worker in its own process (bench/workerProcess.ts), the
 * administrator's approval on the simulator's consent page, and the progress line.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import got from 'got';
import { z } from 'zod';
import type { EnterpriseClient, EnterpriseRuns, StartEnterpriseDowngrade } from '../src/client.js';
import type { EnterpriseStatus } from '../src/workflows/enterpriseDefinitions.js';
import { decideOnConsentPage, followRedirect } from '../harness/stack.js';
import type { ChildMessage, ParentMessage, WorkerStats } from './workerProcess.js';
import { CLIENT, sleep } from './support.js';

/** The worker container's Node options in docker-compose.yml. */
export const WORKER_NODE_OPTIONS = '--max-old-space-size=128';

export function describeProgress(status: EnterpriseStatus): string {
  return `phase ${status.phase}, started ${status.started}/${status.userCount}, in flight ${status.inFlight}, counts ${JSON.stringify(status.counts)}, run ${status.runs}`;
}

/**
 * Starts the downgrade of a simulated domain (`createSimulatedDomain`) on all its users, revoking without waiting for
 * an operator's approval, and approves Free/Busy as its administrator.
 */
export async function startAndApprove(
  enterprise: EnterpriseClient,
  simulated: { domain: string } & Awaited<ReturnType<typeof createSimulatedDomain>>,
  options: Pick<StartEnterpriseDowngrade, 'window' | 'userDeadlineMs' | 'maxUserRequests'> & {
    deadline: number;
  },
): Promise<void> {
  const { deadline, ...run } = options;
  const { domain, emails, serviceAccount } = simulated;
  await enterprise.start({
    domain,
    requireApproval: false,
    users: chunks(emails, 1000),
    serviceAccountRefreshToken: serviceAccount.refresh_token,
    serviceAccountSub: serviceAccount.service_account_id,
    ...run,
  });
  await approveAsAdministrator(enterprise, domain, deadline);
}

/** The administrator approves Free/Busy on the simulator's consent page, over HTTP, as a browser would. */
export async function approveAsAdministrator(enterprise: EnterpriseRuns, domain: string, deadline: number) {
  for (;;) {
    const status = await enterprise.get(domain).catch(() => undefined);
    if (status?.phase === 'awaiting_admin' && status.authorizationUrl) {
      const location = await decideOnConsentPage(status.authorizationUrl, 'free_busy_google', { domain });
      const back = await followRedirect(location);
      if (back.status !== 303) throw new Error(`the callback server answered ${back.status}`);
      return;
    }
    if (Date.now() > deadline) throw new Error(`the downgrade of ${domain} never asked the administrator`);
    await sleep(100);
  }
}

export interface WorkerHandle {
  stats(resetPeak: boolean): Promise<WorkerStats>;
  /** Kills the process with SIGKILL, as a crash would, and waits until it is gone. */
  kill(): Promise<void>;
  slowTaskWarnings(): number;
  stop(): Promise<void>;
}

export async function startWorkerProcess(env: Record<string, string>): Promise<WorkerHandle> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./workerProcess.ts', import.meta.url)), [], {
    // The service's worker gets its heap and allocator as docker-compose.yml sets them
    // (BENCH_WORKER_NODE_OPTIONS replaces the Node options); the yardstick's worker runs with Node's defaults.
    env: {
      ...process.env,
      ...env,
      ...(env.BENCH_TRIVIAL_TASK_QUEUE
        ? {}
        : {
            NODE_OPTIONS: process.env.BENCH_WORKER_NODE_OPTIONS ?? WORKER_NODE_OPTIONS,
            MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
          }),
    },
    // BENCH_WORKER_EXEC_ARGV: flags Node takes only on its command line, such as --cpu-prof.
    execArgv: ['--import', 'tsx', ...(process.env.BENCH_WORKER_EXEC_ARGV?.split(' ').filter(Boolean) ?? [])],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  // The worker's output is passed on, and the SDK's slow-workflow-task warnings counted on the way.
  let slowTaskWarnings = 0;
  for (const output of [child.stdout!, child.stderr!]) {
    createInterface({ input: output }).on('line', (line) => {
      process.stderr.write(`${line}\n`);
      if (line.includes('TMPRL1104')) slowTaskWarnings += 1;
    });
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let waiting: ((stats: WorkerStats) => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'ready') resolve();
      else if (message.type === 'error') reject(new Error(`worker process: ${message.message}`));
      else if (message.type === 'stats') waiting?.(message);
    });
    void exited.then((code) => reject(new Error(`worker process exited with code ${code}`)));
  });
  const timeout = sleep(60_000).then(() => {
    throw new Error('the worker process did not start within 60 s');
  });
  try {
    await Promise.race([ready, timeout]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  let queue = Promise.resolve<unknown>(undefined);
  return {
    slowTaskWarnings: () => slowTaskWarnings,
    stats(resetPeak) {
      const next = queue.then(
        () =>
          new Promise<WorkerStats>((resolve, reject) => {
            if (child.exitCode !== null) return reject(new Error('the worker process has exited'));
            waiting = resolve;
            child.send({ type: 'stats', resetPeak } satisfies ParentMessage);
          }),
      );
      queue = next.catch(() => undefined);
      return next;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.connected) child.send({ type: 'stop' } satisfies ParentMessage);
      const stopped = await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let start = 0; start < items.length; start += size) yield items.slice(start, start + size);
}

/** A domain of N users (`user<i>@<domain>`) on the simulator, and its service account. */
export async function createSimulatedDomain(simulatorUrl: string, domain: string, users: number) {
  const emails = Array.from({ length: users }, (_, i) => `user${i}@${domain}`);
  const serviceAccount = z.object({ service_account_id: z.string(), refresh_token: z.string() }).parse(
    await got
      .post(`${simulatorUrl}/_sim/enterprise/domains`, {
        json: { domain, client_id: CLIENT.clientId, users: emails },
      })
      .json(),
  );
  return { emails, serviceAccount };
}

/** Users the simulator holds with a live Free/Busy authorization, over every domain. */
export async function liveFreeBusyUsers(simulatorUrl: string): Promise<number> {
  const summary = z
    .object({ users: z.object({ by_provider: z.record(z.string(), z.object({ active: z.number() })) }) })
    .parse(await got(`${simulatorUrl}/_sim/enterprise/state?summary=1`).json());
  return Object.entries(summary.users.by_provider)
    .filter(([provider]) => provider.endsWith('_free_busy'))
    .reduce((sum, [, counts]) => sum + counts.active, 0);
}
