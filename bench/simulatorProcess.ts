/**
 * The Cronofy simulator alone in its own process for `bench/callbacks.ts`, so that neither the service under test
 * nor the load generator shares an event loop with it. Unlike `src/simulator/main.ts` it logs nothing per request
 * and starts with the rate limits lifted, or those BENCH_RATE_LIMIT gives (JSON: perSecond, perMinute). Configured by environment variables; sends `{ type: 'ready', url }`
 * over IPC once listening and stops on SIGTERM.
 */
import { rateLimitSchema } from '../simulator/rateLimit.js';
import { startSimulator } from '../simulator/server.js';

export type SimulatorMessage = { type: 'ready'; url: string } | { type: 'error'; message: string };

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`simulatorProcess: ${name} is not set`);
  return value;
}

try {
  const simulator = await startSimulator({
    host: '127.0.0.1',
    port: 0,
    clients: [
      {
        clientId: required('BENCH_CLIENT_ID'),
        clientSecret: required('BENCH_CLIENT_SECRET'),
        redirectUris: [required('BENCH_REDIRECT_URI')],
      },
    ],
    rateLimit: process.env.BENCH_RATE_LIMIT
      ? rateLimitSchema.parse(JSON.parse(process.env.BENCH_RATE_LIMIT))
      : { perSecond: 1_000_000, perMinute: 60_000_000 },
  });
  process.send?.({ type: 'ready', url: simulator.url } satisfies SimulatorMessage);
  process.once('SIGTERM', () => {
    void simulator.close().then(() => process.exit(0));
  });
  process.once('disconnect', () => {
    void simulator.close().then(() => process.exit(0));
  });
} catch (error) {
  process.send?.({
    type: 'error',
    message: error instanceof Error ? (error.stack ?? error.message) : String(error),
  } satisfies SimulatorMessage);
  process.exit(1);
}
