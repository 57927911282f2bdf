/**
 * Individual starts with link per second through the HTTP API (`POST /v1/downgrades`, an API key, an
 * Idempotency-Key per request) against the service's own client (`IndividualClient.startWithLink` in this
 * process), on the same stack in the same run, Cronofy's limits lifted; and the latency of one start with link.
 * The service runs as deployed (src/main.ts, SERVICE_ROLES); see bench/apiStack.ts and bench/README.md.
 *
 *   npx tsx bench/api.ts [--starts 300] [--concurrency 16] [--repeat 3] [--warmup 30]
 *                        [--roles split|combined] [--api-rate-limit 1000000000] [--without-idempotency-key]
 *                        [--log-level info] [--cronofy-calls-per-second 100000] [--timeout 300]
 *                        [--database-url postgres://…]
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import got from 'got';
import { z } from 'zod';
import { individualDowngradeId } from '../src/workflows/definitions.js';
import { type ApiStack, startApiStack } from './apiStack.js';
import { cpuSnapshot, type CpuSnapshot } from './cpu.js';
import { startBenchPostgres } from './postgres.js';
import {
  CLIENT,
  countBy,
  describeCounts,
  distribution,
  fmt,
  log,
  mapLimit,
  middle,
  now,
  positive,
  sleep,
  type Distribution,
} from './support.js';

const { values: args } = parseArgs({
  options: {
    starts: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '16' },
    repeat: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '30' },
    roles: { type: 'string', default: 'split' },
    'api-rate-limit': { type: 'string', default: '1000000000' },
    'without-idempotency-key': { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'info' },
    'cronofy-calls-per-second': { type: 'string', default: '100000' },
    timeout: { type: 'string', default: '300' },
    'database-url': { type: 'string' },
  },
});

const options = {
  starts: Math.floor(positive('starts', args.starts)),
  concurrency: Math.floor(positive('concurrency', args.concurrency)),
  repeat: Math.floor(positive('repeat', args.repeat)),
  warmup: z.coerce.number().int().min(0).parse(args.warmup),
  roles: z.enum(['split', 'combined']).parse(args.roles),
  apiRateLimitPerMinute: z.coerce.number().int().min(0).parse(args['api-rate-limit']),
  idempotencyKey: !args['without-idempotency-key'],
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).parse(args['log-level']),
  cronofyCallsPerSecond: positive('cronofy-calls-per-second', args['cronofy-calls-per-second']),
  timeoutMs: positive('timeout', args.timeout) * 1000,
};

type Path = 'API' | 'client';
const PATHS: readonly Path[] = ['API', 'client'];
/** Simulator accounts are made at this concurrency before anything is timed. */
const ACCOUNT_CONCURRENCY = 16;
/** A start that has not answered by then counts as a failure. */
const REQUEST_TIMEOUT_MS = 60_000;
/** Between phases: the last phase's workflows finish what follows their link (the state's search attribute). */
const SETTLE_MS = 2_000;

const SimulatorAccount = z.object({ sub: z.string(), refresh_token: z.string() });
type User = z.infer<typeof SimulatorAccount> & { userId: string };

/** What both paths answer: the documented fields the bench checks. */
const Started = z.object({
  workflowId: z.string(),
  authorizationUrl: z.string(),
  authorizationExpiresAt: z.string(),
  link: z.string().optional(),
});

interface Outcome {
  ms: number;
  workflowId?: string;
  error?: string;
}

interface PhaseResult {
  run: number;
  path: Path;
  starts: number;
  failed: number;
  errors: Record<string, number>;
  wallS: number;
  startsPerS: number;
  latency: Distribution;
  /** CPU ms per start by process; `machine cores`: the whole machine's busy cores over the phase. */
  cpuMsPerStart: Record<string, number>;
  machineCores: number;
}

/** The answer's checks: a workflow id of this person and a consent URL. */
function check(user: User, answer: unknown): string | undefined {
  const parsed = Started.safeParse(answer);
  if (!parsed.success) return 'answer without workflowId/authorizationUrl';
  if (parsed.data.workflowId !== individualDowngradeId(user.sub)) return 'another workflowId';
  try {
    if (!/^https?:$/.test(new URL(parsed.data.authorizationUrl).protocol))
      return 'authorizationUrl not http(s)';
  } catch {
    return 'authorizationUrl not a URL';
  }
  return undefined;
}

function request(user: User) {
  return { sub: user.sub, refreshToken: user.refresh_token, userId: user.userId };
}

/** `POST /v1/downgrades` as a backend sends it: its key, JSON, a fresh Idempotency-Key, over keep-alive. */
function startViaApi(stack: ApiStack, agent: http.Agent, user: User): Promise<Outcome> {
  const base = new URL(stack.apiUrl);
  const body = JSON.stringify(request(user));
  const started = now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (outcome: Omit<Outcome, 'ms'>) => {
      if (done) return;
      done = true;
      resolve({ ms: now() - started, ...outcome });
    };
    const sent = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: 'POST',
        path: '/v1/downgrades',
        agent,
        headers: {
          authorization: `Bearer ${stack.apiKey}`,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          ...(options.idempotencyKey ? { 'idempotency-key': randomUUID() } : {}),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (error) => finish({ error: `response: ${error.message}` }));
        response.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if (response.statusCode !== 201) {
            const code = /"code":"([^"]+)"/.exec(text)?.[1] ?? text.slice(0, 80);
            return finish({ error: `HTTP ${response.statusCode} ${code}` });
          }
          let answer: unknown;
          try {
            answer = JSON.parse(text);
          } catch {
            return finish({ error: 'answer not JSON' });
          }
          const problem = check(user, answer);
          finish(
            problem ? { error: problem } : { workflowId: (answer as { workflowId: string }).workflowId },
          );
        });
      },
    );
    sent.setTimeout(REQUEST_TIMEOUT_MS, () =>
      sent.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)),
    );
    sent.on('error', (error) => finish({ error: `request: ${error.message}` }));
    sent.end(body);
  });
}

/** The service's own client's start with link, in this process. */
async function startViaClient(stack: ApiStack, user: User): Promise<Outcome> {
  const started = now();
  try {
    const answer = await Promise.race([
      stack.individual.startWithLink(request(user)),
      sleep(REQUEST_TIMEOUT_MS).then(() => {
        throw new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`);
      }),
    ]);
    const ms = now() - started;
    const problem = check(user, answer);
    return problem ? { ms, error: problem } : { ms, workflowId: answer.workflowId };
  } catch (error) {
    return {
      ms: now() - started,
      error: `${(error as Error).name}: ${(error as Error).message.slice(0, 80)}`,
    };
  }
}

/** CPU ms per start of each process over the phase, from /proc. */
function cpuPerStart(from: CpuSnapshot, to: CpuSnapshot, starts: number) {
  const cpuMsPerStart: Record<string, number> = {};
  for (const name of ['api', 'service', 'bench', 'worker', 'dev server', 'PostgreSQL', 'simulator']) {
    if (to.seconds[name] === undefined) continue;
    cpuMsPerStart[name] = ((to.seconds[name] - (from.seconds[name] ?? 0)) * 1000) / starts;
  }
  const machineCores = ((to.seconds.machine ?? 0) - (from.seconds.machine ?? 0)) / ((to.at - from.at) / 1000);
  return { cpuMsPerStart, machineCores };
}

async function phase(stack: ApiStack, run: number, path: Path, users: User[], seen: Set<string>) {
  const agent = new http.Agent({
    keepAlive: true,
    maxSockets: options.concurrency,
    maxFreeSockets: options.concurrency,
  });
  try {
    const cpuFrom = cpuSnapshot(stack.pids);
    const first = now();
    let last = first;
    const work = mapLimit(users, options.concurrency, async (user) => {
      const outcome =
        path === 'API' ? await startViaApi(stack, agent, user) : await startViaClient(stack, user);
      last = Math.max(last, now());
      return outcome;
    });
    const outcomes = await Promise.race([
      work,
      sleep(options.timeoutMs).then(() => {
        throw new Error(
          `TIMEOUT: ${path} phase of run ${run} did not finish within ${options.timeoutMs / 1000} s`,
        );
      }),
    ]);
    const cpuTo = cpuSnapshot(stack.pids);
    for (const outcome of outcomes) {
      if (!outcome.workflowId) continue;
      if (seen.has(outcome.workflowId)) outcome.error = 'workflowId answered twice';
      seen.add(outcome.workflowId);
    }
    const failures = outcomes.filter((outcome) => outcome.error);
    const ok = outcomes.filter((outcome) => !outcome.error);
    const wallS = (last - first) / 1000;
    const result: PhaseResult = {
      run,
      path,
      starts: users.length,
      failed: failures.length,
      errors: countBy(failures, (outcome) => outcome.error!),
      wallS,
      startsPerS: ok.length / wallS,
      latency: distribution(ok.map((outcome) => outcome.ms)),
      ...cpuPerStart(cpuFrom, cpuTo, users.length),
    };
    log(
      `run ${run} ${path}: ${ok.length}/${users.length} in ${fmt(wallS, 1)} s, ${fmt(result.startsPerS, 1)}/s, ` +
        `p50 ${fmt(result.latency.p50)} ms, p99 ${fmt(result.latency.p99)} ms` +
        (failures.length ? `; FAILED ${describeCounts(result.errors)}` : ''),
    );
    return result;
  } finally {
    agent.destroy();
  }
}

async function createUsers(stack: ApiStack, count: number): Promise<User[]> {
  const stamp = Date.now();
  return mapLimit(
    Array.from({ length: count }, (_, i) => i),
    ACCOUNT_CONCURRENCY,
    async (i) => ({
      ...SimulatorAccount.parse(
        await got
          .post(`${stack.simulatorUrl}/_sim/accounts`, {
            json: { email: `api-${stamp}-${i}@bench.example.org`, client_id: CLIENT.clientId },
          })
          .json(),
      ),
      userId: `bench-${i}`,
    }),
  );
}

function table(header: string[], rows: string[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

function printResults(results: PhaseResult[]): void {
  if (results.length === 0) return;
  const byRun = new Map<number, Partial<Record<Path, PhaseResult>>>();
  for (const result of results) byRun.set(result.run, { ...byRun.get(result.run), [result.path]: result });
  const ratios = [...byRun.values()]
    .filter((pair) => pair.API && pair.client)
    .map((pair) => pair.API!.startsPerS / pair.client!.startsPerS);
  const median = (path: Path, value: (result: PhaseResult) => number) =>
    middle(results.filter((result) => result.path === path).map(value));

  console.log(
    `\n### Starts with link, ${options.starts} a phase at concurrency ${options.concurrency} (fresh users; ` +
      `roles ${options.roles}; API_RATE_LIMIT_PER_MINUTE ${options.apiRateLimitPerMinute}; ` +
      `${options.idempotencyKey ? 'an Idempotency-Key per request' : 'no Idempotency-Key'})\n`,
  );
  table(
    ['run', 'path', 'starts', 'failed', 'wall s', 'starts/s', 'ms p50', 'p90', 'p99', 'max'],
    results.map((r) => [
      String(r.run),
      r.path,
      String(r.starts),
      r.failed ? `**${r.failed}** (${describeCounts(r.errors)})` : '0',
      fmt(r.wallS, 2),
      fmt(r.startsPerS, 1),
      fmt(r.latency.p50, 1),
      fmt(r.latency.p90, 1),
      fmt(r.latency.p99, 1),
      fmt(r.latency.max, 1),
    ]),
  );

  console.log(`\n### Medians over ${byRun.size} run(s)\n`);
  table(
    ['path', 'starts/s', 'ms p50', 'p99', 'API/client starts/s (per run)'],
    PATHS.map((path) => [
      path,
      fmt(
        median(path, (r) => r.startsPerS),
        1,
      ),
      fmt(
        median(path, (r) => r.latency.p50),
        1,
      ),
      fmt(
        median(path, (r) => r.latency.p99),
        1,
      ),
      path === 'API'
        ? `**${fmt(middle(ratios), 2)}** (${ratios.map((ratio) => fmt(ratio, 2)).join(', ')})`
        : '',
    ]),
  );

  const processes = [...new Set(results.flatMap((result) => Object.keys(result.cpuMsPerStart)))];
  console.log(
    `\n### CPU ms per start by process (medians; \`bench\` sends the requests or runs the client)\n`,
  );
  table(
    ['path', ...processes, 'machine busy cores'],
    PATHS.map((path) => [
      path,
      ...processes.map((name) =>
        fmt(
          median(path, (r) => r.cpuMsPerStart[name] ?? NaN),
          2,
        ),
      ),
      fmt(
        median(path, (r) => r.machineCores),
        2,
      ),
    ]),
  );
}

function gitCommit(): string {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      encoding: 'utf8',
    });
    return dirty.trim() ? `${commit} (uncommitted changes in the tree)` : commit;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const external = args['database-url'] ?? process.env.BENCH_DATABASE_URL;
  const postgres = external ? { url: external, dataDir: undefined } : startBenchPostgres();
  const scratch = mkdtempSync(join(tmpdir(), 'bench-api-'));
  log(
    `options: ${JSON.stringify(options)}; ${new Date().toISOString()}, commit ${gitCommit()}, Node ` +
      `${process.version}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  const results: PhaseResult[] = [];
  let failed = false;
  let stack: ApiStack | undefined;
  const started = Date.now();
  try {
    stack = await startApiStack({
      adminUrl: postgres.url,
      pgDataDir: postgres.dataDir,
      roles: options.roles,
      apiRateLimitPerMinute: options.apiRateLimitPerMinute,
      cronofyCallsPerSecond: options.cronofyCallsPerSecond,
      logLevel: options.logLevel,
      scratch,
    });
    log(
      `stack up in ${fmt((Date.now() - started) / 1000, 1)} s; service log(s): ${stack.serviceLogs.join(', ')}`,
    );
    const perPath = options.starts * options.repeat + options.warmup;
    const users = await createUsers(stack, 2 * perPath);
    log(`${users.length} Read/Write users created`);
    const seen = new Set<string>();
    const take = (count: number) => users.splice(0, count);
    if (options.warmup > 0) {
      for (const path of PATHS) {
        const warm = await phase(stack, 0, path, take(options.warmup), seen);
        failed ||= warm.failed > 0;
      }
    }
    for (let run = 1; run <= options.repeat; run += 1) {
      // Alternating which path goes first, so that neither always meets the longer backlog of waiting workflows.
      const order = run % 2 === 1 ? PATHS : [...PATHS].reverse();
      for (const path of order) {
        await sleep(SETTLE_MS);
        const result = await phase(stack, run, path, take(options.starts), seen);
        results.push(result);
        failed ||= result.failed > 0;
      }
    }
  } catch (error) {
    failed = true;
    console.error(error);
    for (const logFile of stack?.serviceLogs ?? []) {
      try {
        const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n');
        log(`tail of ${logFile}:\n${lines.slice(-20).join('\n')}`);
      } catch {
        // no log
      }
    }
  } finally {
    await stack?.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  printResults(results);
  log(
    `whole run ${fmt((Date.now() - started) / 1000, 0)} s; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  if (failed) log('FAILED: see the tables and messages above');
  return failed ? 1 : 0;
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(error);
  return 1;
});
// Anything the SDK's runtime still holds must not keep a finished benchmark alive.
setTimeout(() => process.exit(), 5_000).unref();
