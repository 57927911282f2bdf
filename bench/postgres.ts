/**
 * The benchmarks' PostgreSQL: the project's throwaway server (scripts/start-test-postgres.sh) on its own port and
 * data folder, so that no `npm test`, which stops the tests' server when it ends, can end a long run half-way.
 * Each run works in a scratch database of its own
 * (createScratchDatabase in harness/postgres.ts).
 */
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Starts the server unless it runs (BENCH_POSTGRES_PORT, default 55439; BENCH_POSTGRES_DIR); its admin URL. */
export function startBenchPostgres(): { url: string; dataDir: string } {
  const dataDir = process.env.BENCH_POSTGRES_DIR ?? join(tmpdir(), 'cronofy-downgrade-bench-postgres');
  const script = fileURLToPath(new URL('../scripts/start-test-postgres.sh', import.meta.url));
  const url = execFileSync('bash', [script], {
    encoding: 'utf8',
    env: {
      ...process.env,
      TEST_POSTGRES_PORT: process.env.BENCH_POSTGRES_PORT ?? '55439',
      TEST_POSTGRES_DIR: dataDir,
    },
  }).trim();
  return { url, dataDir };
}
