/** The Cronofy simulator in a process of its own (bench/simulatorProcess.ts), for the benchmarks' stacks. */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RateLimit } from '../simulator/rateLimit.js';
import type { SimulatorMessage } from './simulatorProcess.js';
import { CLIENT, sleep } from './support.js';

/**
 * Starts it with the benchmarks' client and this redirect URI, its rate limits lifted unless `rateLimit` says
 * otherwise; answers its URL, pid and a stop.
 */
export async function startSimulatorProcess(redirectUri: string, options: { rateLimit?: RateLimit } = {}) {
  const child = fork(fileURLToPath(new URL('./simulatorProcess.ts', import.meta.url)), [], {
    env: {
      ...process.env,
      BENCH_CLIENT_ID: CLIENT.clientId,
      BENCH_CLIENT_SECRET: CLIENT.clientSecret,
      BENCH_REDIRECT_URI: redirectUri,
      ...(options.rateLimit ? { BENCH_RATE_LIMIT: JSON.stringify(options.rateLimit) } : {}),
    },
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await Promise.race([
    new Promise<string>((resolve, reject) => {
      child.on('message', (message: SimulatorMessage) =>
        message.type === 'ready' ? resolve(message.url) : reject(new Error(`simulator: ${message.message}`)),
      );
      void exited.then(() => reject(new Error('the simulator process exited before it listened')));
    }),
    sleep(60_000).then(() => {
      throw new Error('the simulator process did not start within 60 s');
    }),
  ]).catch((error: unknown) => {
    child.kill('SIGKILL');
    throw error;
  });
  return {
    url,
    pid: child.pid,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      if (!(await Promise.race([exited.then(() => true), sleep(10_000).then(() => false)]))) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
