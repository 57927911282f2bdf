/**
 * Load and abuse benchmark of the callback server, running as in production: `src/main.ts` as a callback-server
 * process and a worker process (SERVICE_ROLES, as docker-compose.yml deploys them; `--roles combined` for one), on
 * a Temporal dev server, PostgreSQL and the Cronofy simulator in processes of their own; this process only
 * prepares, sends and checks. See bench/README.md.
 *
 *   npx tsx bench/callbacks.ts [--count 1000] [--rate 500,max] [--concurrency 64] [--bad 10000]
 *                              [--latency-count 300] [--latency-rate 20] [--repeat 1] [--timeout 300]
 *                              [--phases sustained,abuse,latency] [--profile] [--service-node <node>]
 *                              [--roles split|combined] [--cronofy-calls-per-second 100000]
 *                              [--dev-server-store memory|wal]
 *                              [--temporal-address host:port --temporal-metrics-url URL [--temporal-namespace ns]]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startBenchPostgres } from './postgres.js';
import { SERVICE_PROCESSES, summarizeProfiles } from './cpu.js';
import { log } from './support.js';
import { args, options, phase, PhaseTimeout } from './callbacks/options.js';
import { type Stack, startStack } from './callbacks/stack.js';
import { tail } from './serviceProcess.js';
import { signalYardstick, sustained } from './callbacks/sustained.js';
import { abuse } from './callbacks/abuse.js';
import { latency } from './callbacks/latency.js';
import { type Results, printResults } from './callbacks/tables.js';

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const external = args['database-url'] ?? process.env.BENCH_DATABASE_URL;
  const postgres = external ? { url: external, dataDir: undefined } : startBenchPostgres();
  const scratch = mkdtempSync(join(tmpdir(), 'bench-callbacks-'));
  log(
    `options: ${JSON.stringify({ ...options, phases: [...options.phases] })}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  const results: Results = { sustained: [], yardstick: [], abuse: [], latency: [], profile: [] };
  let failed = false;
  let stack: Stack | undefined;
  try {
    for (let run = 1; run <= options.repeat; run += 1) {
      log(`run ${run}/${options.repeat}: starting the stack`);
      stack = await phase(
        'start the stack',
        () => startStack(postgres.url, postgres.dataDir, scratch),
        300_000,
      );
      log(`service log(s): ${stack.serviceLogs.join(', ')}`);
      const used: URL[] = [];
      if (options.phases.has('sustained')) {
        results.yardstick.push(await signalYardstick(stack, run, false));
        results.yardstick.push(await signalYardstick(stack, run, true));
        for (const rate of options.rates) {
          const result = await sustained(stack, run, rate, used);
          results.sustained.push(result);
          failed ||= !result.ok;
        }
      }
      if (options.phases.has('abuse')) {
        // Phase 1's callbacks, all used once, are the abuse phase's replays.
        const result = await abuse(stack, run, used);
        results.abuse.push(result);
        failed ||= !result.ok;
      }
      if (options.phases.has('latency')) {
        const result = await latency(stack, run);
        results.latency.push(result);
        failed ||= !result.ok;
      }
      await stack.stop();
      for (const [name] of SERVICE_PROCESSES) {
        const pid = stack.pids[name];
        if (options.profile && pid)
          results.profile.push(...summarizeProfiles(stack.profileDir, pid, run, name));
      }
      stack = undefined;
    }
  } catch (error) {
    failed = true;
    console.error(error instanceof PhaseTimeout ? error.message : error);
    for (const logFile of stack?.serviceLogs ?? []) log(`log tail of ${logFile}:\n${tail(logFile)}`);
  } finally {
    await stack?.stop();
    printResults(results);
    if (options.profile) log(`kept ${scratch} (service CPU profiles and logs)`);
    else rmSync(scratch, { recursive: true, force: true });
  }
  if (failed) log('FAILED: see the tables and messages above');
  return failed ? 1 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
// Anything the SDK's runtime or a timed-out phase still holds must not keep a finished benchmark alive.
setTimeout(() => process.exit(), 5_000).unref();
