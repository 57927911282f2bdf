// The callback benchmark's command line, the constants its phases share, and each phase's time limit.
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { log, positive } from '../support.js';

/** Each prompt waits an hour: nothing expires or reminds during a run. */
export const PROMPT_MS = 3_600_000;
/** Concurrency of the preparation (simulator accounts, starts, queries, consent forms) and of history reads. */
export const PREPARE_CONCURRENCY = 32;
/** How long the Temporal server's counters may take to reach its metrics page (seen: about a second). */
export const METRICS_LAG_MS = 1_500;
/** Before a baseline: long enough for the preparation's last requests to have been counted. */
export const METRICS_SETTLE_MS = 3_000;
/** Consent pages actually loaded per batch; see `collectConsents`. */
export const CONSENT_PAGE_SAMPLE = 10;

export const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '500,max' },
    concurrency: { type: 'string', default: '64' },
    'max-in-flight': { type: 'string', default: '2000' },
    bad: { type: 'string', default: '10000' },
    waiting: { type: 'string', default: '50' },
    'latency-count': { type: 'string', default: '300' },
    'latency-rate': { type: 'string', default: '20' },
    repeat: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '300' },
    phases: { type: 'string', default: 'sustained,abuse,latency' },
    'log-level': { type: 'string', default: 'info' },
    profile: { type: 'boolean', default: false },
    'service-node': { type: 'string' },
    'database-url': { type: 'string' },
    'cronofy-calls-per-second': { type: 'string', default: '100000' },
    roles: { type: 'string', default: 'split' },
    'temporal-address': { type: 'string' },
    'temporal-metrics-url': { type: 'string' },
    'temporal-namespace': { type: 'string', default: 'default' },
    'dev-server-store': { type: 'string', default: 'memory' },
  },
});

const PHASES = ['sustained', 'abuse', 'latency'] as const;
type PhaseName = (typeof PHASES)[number];
export const options = {
  count: Math.floor(positive('count', args.count)),
  rates: args.rate
    .split(',')
    .map((r) => (r.trim() === 'max' ? ('max' as const) : positive('rate', r.trim()))),
  concurrency: Math.floor(positive('concurrency', args.concurrency)),
  maxInFlight: Math.floor(positive('max-in-flight', args['max-in-flight'])),
  bad: Math.floor(positive('bad', args.bad)),
  waiting: Math.max(3, Math.floor(positive('waiting', args.waiting))),
  latencyCount: Math.floor(positive('latency-count', args['latency-count'])),
  latencyRate: positive('latency-rate', args['latency-rate']),
  repeat: Math.floor(positive('repeat', args.repeat)),
  timeoutMs: positive('timeout', args.timeout) * 1000,
  phases: new Set(
    args.phases.split(',').map((p) => {
      if (!(PHASES as readonly string[]).includes(p.trim())) throw new Error(`unknown phase ${p}`);
      return p.trim() as PhaseName;
    }),
  ),
  logLevel: args['log-level'],
  profile: args.profile,
  serviceNode: args['service-node'] ?? process.execPath,
  cronofyCallsPerSecond: positive('cronofy-calls-per-second', args['cronofy-calls-per-second']),
  /** `split`: a callback-server process and a worker process, as docker-compose.yml deploys; `combined`: one. */
  roles: z.enum(['split', 'combined']).parse(args.roles),
  /**
   * A Temporal server the benchmark does not start (the docker-compose stack's, say), and its Prometheus endpoint:
   * the server-work table and the abuse phase's count of signal RPCs read it. Both or neither.
   */
  temporal: externalTemporal(
    args['temporal-address'],
    args['temporal-metrics-url'],
    args['temporal-namespace'],
  ),
  /**
   * Where the dev server keeps its SQLite database: `memory` (the CLI's default, shared-cache in-memory), or `wal`,
   * a file in WAL mode with synchronous off, on the /dev/shm RAM disk when there is one (so, like memory, never
   * durable).
   */
  devServerStore: z.enum(['memory', 'wal']).parse(args['dev-server-store']),
};

function externalTemporal(address: string | undefined, metricsUrl: string | undefined, namespace: string) {
  if (address === undefined && metricsUrl === undefined) return undefined;
  if (address === undefined || metricsUrl === undefined) {
    throw new Error('--temporal-address and --temporal-metrics-url go together: the checks read its metrics');
  }
  return { address, metricsUrl: new URL(metricsUrl).toString(), namespace };
}

export class PhaseTimeout extends Error {
  override readonly name = 'PhaseTimeout';
}

/**
 * Runs one phase under its own time limit. On timeout it throws with what the phase had reached (its `status`),
 * and the caller tears everything down and exits 1.
 */
export async function phase<T>(
  name: string,
  work: (status: { text: string }) => Promise<T>,
  timeoutMs = options.timeoutMs,
): Promise<T> {
  const status = { text: 'starting' };
  const started = Date.now();
  log(`${name}: start (limit ${timeoutMs / 1000} s)`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new PhaseTimeout(
            `TIMEOUT: phase "${name}" did not finish within ${timeoutMs / 1000} s (reached: ${status.text})`,
          ),
        ),
      timeoutMs,
    );
  });
  const progress = setInterval(() => log(`${name}: ${status.text}`), 10_000);
  const running = work(status);
  // After a timeout the work may still fail while everything is torn down: that is no second error.
  running.catch(() => {});
  try {
    const result = await Promise.race([running, timeout]);
    log(`${name}: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return result;
  } finally {
    clearTimeout(timer);
    clearInterval(progress);
  }
}
