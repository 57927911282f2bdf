/**
 * The callback server and the Cronofy simulator in the benchmark's own process, the simulator's client redirecting to
 * the callback server: the stack of the benchmarks whose worker runs in a process of its own.
 */
import { startCallbackServer } from '../src/callbacks/server.js';
import type { CallbackDeps } from '../src/callbacks/delivery.js';
import { REDIRECT_PATH } from '../src/contracts/callbackPaths.js';
import type { RateLimit } from '../simulator/rateLimit.js';
import { startSimulator } from '../simulator/server.js';
import { CLIENT } from './support.js';

/** Starts both; `cleanups` closes them (the benchmarks run their cleanups in reverse). */
export async function startCallbacksAndSimulator(
  deps: CallbackDeps,
  rateLimit: RateLimit,
  cleanups: Array<() => Promise<unknown>>,
) {
  const callbacks = await startCallbackServer(deps, { host: '127.0.0.1', port: 0, logLevel: 'silent' });
  cleanups.push(() => callbacks.app.close());
  const redirectUri = `${callbacks.url}${REDIRECT_PATH}`;
  const simulator = await startSimulator({
    clients: [{ ...CLIENT, redirectUris: [redirectUri] }],
    rateLimit,
  });
  cleanups.push(() => simulator.close());
  return { callbacks, simulator, redirectUri };
}
