/**
 * What both benchmarks share: logging, number arguments, statistics and bounded concurrency. Each benchmark keeps
 * its own argument table and phases.
 */
import { performance } from 'node:perf_hooks';
import got from 'got';

/** The simulator application both benchmarks register. */
export const CLIENT = { clientId: 'bench-app', clientSecret: 'bench-app-secret-0123456789' };

export const log = (message: string) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Wall-clock milliseconds with sub-millisecond resolution, comparable with Temporal's event times. */
export const now = () => performance.timeOrigin + performance.now();

/** A command-line number that must be positive: `--name` is named in the error. */
export function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`--${name} must be a positive number, not ${text}`);
  return value;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The median (the mean of the two middle values for an even count). */
export function middle(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Row label: the run's number, or "median" for rows of medians (run 0). */
export const runLabel = (run: number) => (run === 0 ? 'median' : String(run));

export interface Distribution {
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export function distribution(values: number[]): Distribution {
  return {
    p50: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: values.length ? Math.max(...values) : NaN,
  };
}

export function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

export const fmt = (value: number | undefined, digits = 0) =>
  value === undefined || !Number.isFinite(value) ? '–' : value.toFixed(digits);
export const describeCounts = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, n]) => `${key}: ${n}`)
    .join(', ');

export function medianDistribution(items: Distribution[]): Distribution {
  return {
    p50: middle(items.map((d) => d.p50)),
    p90: middle(items.map((d) => d.p90)),
    p99: middle(items.map((d) => d.p99)),
    max: middle(items.map((d) => d.max)),
  };
}

export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
) {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]!, index);
      }
    }),
  );
  return results;
}

/** A counter of a Prometheus text page, summed by its `operation` label over the lines `keep` keeps. */
function countsOf(
  text: string,
  metric: string,
  keep: (line: string) => boolean = () => true,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) || !keep(line)) continue;
    const operation = /operation="([^"]+)"/.exec(line)?.[1] ?? '';
    counts[operation] = (counts[operation] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

export interface ServerRequests {
  persistence: Record<string, number>;
  frontend: Record<string, number>;
}

/**
 * The Temporal server's request counters by operation, from one scrape of its metrics page:
 * - `persistence`: every request it made to its persistence, its executions and tasks (`persistence_requests`) and
 *   its visibility records (`visibility_persistence_requests`, prefixed `visibility:`), on the dev server both on
 *   the same SQLite database;
 * - `frontend`: the requests its frontend received (`service_requests`), clients' and workers' RPCs.
 */
export async function serverRequests(metricsUrl: string): Promise<ServerRequests> {
  const text = await got(metricsUrl).text();
  const persistence = countsOf(text, 'persistence_requests');
  for (const [operation, count] of Object.entries(countsOf(text, 'visibility_persistence_requests'))) {
    persistence[`visibility:${operation}`] = count;
  }
  const frontend = countsOf(text, 'service_requests', (line) => line.includes('service_name="frontend"'));
  return { persistence, frontend };
}

export const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
