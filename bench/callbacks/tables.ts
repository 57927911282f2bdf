// Tables.
import { cpuRows, SERVICE_PROCESSES } from '../cpu.js';
import { describeCounts, fmt, medianDistribution, middle, runLabel, type Distribution } from '../support.js';
import { options } from './options.js';
import type { SustainedResult, YardstickResult } from './sustained.js';
import type { AbuseResult } from './abuse.js';
import type { LatencyResult } from './latency.js';

function table(header: string[], rows: string[][]): void {
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${header.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

const dist = (d: Distribution) => `${fmt(d.p50)} / ${fmt(d.p90)} / ${fmt(d.p99)} / ${fmt(d.max)}`;

function printSustained(rows: SustainedResult[], title: string): void {
  console.log(`\n### ${title}\n`);
  table(
    [
      'run',
      'mode',
      'callbacks',
      'send window s',
      'answer window s',
      'accepted/s (whole window)',
      'accepted/s per second (min, median)',
      'statuses',
      'HTTP ms p50 / p90 / p99 / max',
      'send → signal in history ms p50 / p90 / p99 / max',
      'max in flight',
      'max send lag ms',
      'first send → all ended s',
      'ended completed/s',
      'completed',
      'lost',
      'duplicated',
    ],
    rows.map((r) => [
      runLabel(r.run),
      r.mode,
      String(r.count),
      fmt(r.sendWindowS, 1),
      fmt(r.answerWindowS, 1),
      fmt(r.acceptedPerS, 0),
      `${fmt(r.perSecondMin)}, ${fmt(r.perSecondMedian)}`,
      describeCounts(r.statuses),
      dist(r.latency),
      dist(r.toSignal),
      `${fmt(r.maxInFlight)}${r.capped ? ` (cap ${options.maxInFlight} reached)` : ''}`,
      fmt(r.maxLagMs),
      fmt(r.allDoneS, 1),
      fmt(r.completedPerS, 1),
      `${r.completed}/${r.count}${r.ok ? '' : ' FAILED'}`,
      String(r.lost),
      String(r.duplicated),
    ]),
  );
  console.log(
    `\n### ${title}: the Temporal server's work per callback (its persistence requests${options.temporal ? '' : ', SQLite on the dev server'})\n`,
  );
  table(
    [
      'run',
      'mode',
      'persistence requests / callback: send, until all ended',
      'most of them, per callback: during the send; until all ended',
      "the frontend's requests per callback during the send",
      'after the signal, per downgrade: workflow tasks started (and timed out before starting), activities',
    ],
    rows.map((r) => [
      runLabel(r.run),
      r.mode,
      `${fmt(r.persistencePerCallbackSend, 1)}, ${fmt(r.persistencePerCallback, 1)}`,
      `${largest(r.persistenceByOperationSend, 3)}; ${largest(r.persistenceByOperation, 6)}`,
      largest(r.frontendByOperationSend, 5),
      `${fmt(r.afterSignal.workflowTasks, 2)} (+${fmt(r.afterSignal.timedOut, 2)}), ${fmt(r.afterSignal.activities, 2)}`,
    ]),
  );
}

/** The `count` operations with the most requests per callback, largest first. */
function largest(byOperation: Record<string, number>, count: number): string {
  return Object.entries(byOperation)
    .sort(([, a], [, b]) => b - a)
    .slice(0, count)
    .map(([operation, perCallback]) => `${operation} ${fmt(perCallback, 1)}`)
    .join(', ');
}

function printYardstick(rows: YardstickResult[], title: string): void {
  console.log(`\n### ${title}\n`);
  table(
    [
      'run',
      'signals',
      'each wakes a workflow',
      'target workflows',
      'connections',
      'signals/s',
      'RPC ms p50 / p90 / p99 / max',
    ],
    rows.map((r) => [
      runLabel(r.run),
      String(r.signals),
      r.wakes ? 'yes' : 'no',
      String(r.workflows),
      String(options.concurrency),
      fmt(r.perS, 0),
      dist(r.latency),
    ]),
  );
}

function printAbuse(rows: AbuseResult[], title: string): void {
  console.log(`\n### ${title}\n`);
  table(
    [
      'run',
      'bad callbacks',
      'answered/s',
      'HTTP ms p50 / p90 / p99 / max',
      'statuses',
      'not as documented',
      '5xx or no answer',
      'signal RPCs during',
      "service's callback results",
      'signals in waiting histories',
      'still waiting',
      'health after',
      'good callback after',
    ],
    rows.map((r) => [
      runLabel(r.run),
      String(r.count),
      fmt(r.answeredPerS, 0),
      dist(r.latency),
      describeCounts(r.statuses),
      `${r.unexpected}${r.ok ? '' : ' FAILED'}`,
      String(r.serverErrors),
      String(r.signalRequestsDuring),
      describeCounts(r.serviceResults),
      String(r.signalsInWaitingHistories),
      r.waitingStillWaiting,
      String(r.health),
      r.goodCallback,
    ]),
  );
  const last = rows.at(-1);
  if (last && last.byCategory.length) {
    console.log(`\nBy kind (run ${last.run}):\n`);
    table(
      ['kind', 'sent', 'documented', 'answered'],
      [...last.byCategory]
        .sort((a, b) => a.category.localeCompare(b.category))
        .map((c) => [c.category, String(c.count), String(c.expected), describeCounts(c.got)]),
    );
  }
}

function printLatency(rows: LatencyResult[], title: string): void {
  console.log(`\n### ${title} (ms: p50 / p90 / p99 / max)\n`);
  table(
    [
      'run',
      'downgrades',
      'rate /s',
      'statuses',
      'HTTP answer',
      'send → signal recorded',
      'signal → verified (exchange done)',
      'send → verified',
      'signal → workflow completed',
      'wall: send → result returned',
      'completed',
    ],
    rows.map((r) => [
      runLabel(r.run),
      String(r.count),
      fmt(r.rate),
      describeCounts(r.statuses),
      dist(r.http),
      dist(r.sendToSignal),
      dist(r.signalToVerified),
      dist(r.sendToVerified),
      dist(r.signalToCompleted),
      dist(r.wall),
      `${r.completed}/${r.count}${r.ok ? '' : ' FAILED'}`,
    ]),
  );
}

function printCpu(): void {
  if (!cpuRows.length) return;
  console.log(
    '\n### CPU (cores used on average: the whole machine, shared with other work, and each process; ' +
      '"svc …" splits the service by thread; with --roles split, "cb …" the callback server and "wk …" the worker)\n',
  );
  const names = [
    'machine',
    'dev server',
    ...SERVICE_PROCESSES.flatMap(([name, prefix]) =>
      [name, ...['main', 'workflows', 'Rust core', 'other'].map((thread) => `${prefix} ${thread}`)].filter(
        (column) => cpuRows.some((row) => row.cores[column] !== undefined),
      ),
    ),
    'simulator',
    'PostgreSQL',
    'bench',
  ];
  table(
    ['run', 'phase', 'wall s', ...names],
    cpuRows.map((r) => [String(r.run), r.phase, fmt(r.wallS, 1), ...names.map((n) => fmt(r.cores[n], 2))]),
  );
}

/** Each operation's median over the runs (0 in a run that had none). */
function medianByOperation(runs: Record<string, number>[]): Record<string, number> {
  const operations = [...new Set(runs.flatMap((run) => Object.keys(run)))];
  return Object.fromEntries(
    operations.map((operation) => [operation, middle(runs.map((run) => run[operation] ?? 0))]),
  );
}

function medianSustained(rows: SustainedResult[]): SustainedResult {
  const m = (pick: (r: SustainedResult) => number) => middle(rows.map(pick));
  return {
    ...rows[0]!,
    run: 0,
    sendWindowS: m((r) => r.sendWindowS),
    answerWindowS: m((r) => r.answerWindowS),
    acceptedPerS: m((r) => r.acceptedPerS),
    perSecondMin: m((r) => r.perSecondMin),
    perSecondMedian: m((r) => r.perSecondMedian),
    latency: medianDistribution(rows.map((r) => r.latency)),
    toSignal: medianDistribution(rows.map((r) => r.toSignal)),
    maxInFlight: m((r) => r.maxInFlight),
    maxLagMs: m((r) => r.maxLagMs),
    allDoneS: m((r) => r.allDoneS),
    completedPerS: m((r) => r.completedPerS),
    persistencePerCallbackSend: m((r) => r.persistencePerCallbackSend),
    persistencePerCallback: m((r) => r.persistencePerCallback),
    persistenceByOperationSend: medianByOperation(rows.map((r) => r.persistenceByOperationSend)),
    frontendByOperationSend: medianByOperation(rows.map((r) => r.frontendByOperationSend)),
    persistenceByOperation: medianByOperation(rows.map((r) => r.persistenceByOperation)),
    afterSignal: {
      workflowTasks: m((r) => r.afterSignal.workflowTasks),
      timedOut: m((r) => r.afterSignal.timedOut),
      activities: m((r) => r.afterSignal.activities),
    },
    completed: m((r) => r.completed),
    lost: Math.max(...rows.map((r) => r.lost)),
    duplicated: Math.max(...rows.map((r) => r.duplicated)),
    statuses: sumCounts(rows.map((r) => r.statuses)),
    ok: rows.every((r) => r.ok),
  };
}

function sumCounts(items: Record<string, number>[]): Record<string, number> {
  const total: Record<string, number> = {};
  for (const item of items) for (const [k, v] of Object.entries(item)) total[k] = (total[k] ?? 0) + v;
  return total;
}

export interface Results {
  sustained: SustainedResult[];
  yardstick: YardstickResult[];
  abuse: AbuseResult[];
  latency: LatencyResult[];
  profile: string[];
}

export function printResults(results: Results) {
  const {
    sustained: sustainedRows,
    yardstick: yardstickRows,
    abuse: abuseRows,
    latency: latencyRows,
  } = results;
  if (sustainedRows.length) printSustained(sustainedRows, '1. Sustained callbacks');
  if (yardstickRows.length)
    printYardstick(yardstickRows, 'Yardstick: the same signals from a plain Temporal client (no HTTP)');
  if (abuseRows.length)
    printAbuse(abuseRows, `2. Abuse: ${options.bad} bad callbacks, ${options.concurrency} connections`);
  if (latencyRows.length) printLatency(latencyRows, '3. Callback → verified latency');
  printCpu();
  for (const line of results.profile) console.log(line);
  if (options.repeat > 1) {
    console.log(`\n## Medians of ${options.repeat} runs`);
    const modes = [...new Set(sustainedRows.map((r) => r.mode))];
    if (sustainedRows.length) {
      printSustained(
        modes.map((mode) => medianSustained(sustainedRows.filter((r) => r.mode === mode))),
        '1. Sustained callbacks (median; lost/duplicated: maximum; statuses: summed)',
      );
    }
    if (yardstickRows.length) {
      const kinds = [false, true]
        .map((wakes) => yardstickRows.filter((r) => r.wakes === wakes))
        .filter((rows) => rows.length > 0);
      printYardstick(
        kinds.map((rows) => ({
          ...rows[0]!,
          run: 0,
          perS: middle(rows.map((r) => r.perS)),
          latency: medianDistribution(rows.map((r) => r.latency)),
        })),
        'Yardstick (median)',
      );
    }
    if (abuseRows.length) {
      const m = (pick: (r: AbuseResult) => number) => middle(abuseRows.map(pick));
      printAbuse(
        [
          {
            ...abuseRows[0]!,
            run: 0,
            answeredPerS: m((r) => r.answeredPerS),
            latency: medianDistribution(abuseRows.map((r) => r.latency)),
            statuses: sumCounts(abuseRows.map((r) => r.statuses)),
            unexpected: Math.max(...abuseRows.map((r) => r.unexpected)),
            serverErrors: Math.max(...abuseRows.map((r) => r.serverErrors)),
            signalRequestsDuring: Math.max(...abuseRows.map((r) => r.signalRequestsDuring)),
            serviceResults: sumCounts(abuseRows.map((r) => r.serviceResults)),
            signalsInWaitingHistories: Math.max(...abuseRows.map((r) => r.signalsInWaitingHistories)),
            byCategory: [],
            ok: abuseRows.every((r) => r.ok),
          },
        ],
        '2. Abuse (median rate and latency; counts: maximum; statuses: summed)',
      );
    }
    if (latencyRows.length) {
      printLatency(
        [
          {
            ...latencyRows[0]!,
            run: 0,
            http: medianDistribution(latencyRows.map((r) => r.http)),
            sendToSignal: medianDistribution(latencyRows.map((r) => r.sendToSignal)),
            signalToVerified: medianDistribution(latencyRows.map((r) => r.signalToVerified)),
            sendToVerified: medianDistribution(latencyRows.map((r) => r.sendToVerified)),
            signalToCompleted: medianDistribution(latencyRows.map((r) => r.signalToCompleted)),
            wall: medianDistribution(latencyRows.map((r) => r.wall)),
            statuses: sumCounts(latencyRows.map((r) => r.statuses)),
            completed: Math.min(...latencyRows.map((r) => r.completed)),
            ok: latencyRows.every((r) => r.ok),
          },
        ],
        '3. Callback → verified latency (median of each percentile)',
      );
    }
  }
}
