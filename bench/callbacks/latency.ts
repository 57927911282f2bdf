// 3. Callback → verified latency of Individual downgrades at a modest rate.
import { cpuSnapshot, recordCpu } from '../cpu.js';
import { openLoop, type RequestSpec } from '../httpLoad.js';
import { countBy, distribution, log, now, type Distribution } from '../support.js';
import { phase, options } from './options.js';
import type { Stack } from './stack.js';
import { prepare, pathOf, DELIVERED } from './prepare.js';
import { workflowFacts } from './facts.js';

export interface LatencyResult {
  run: number;
  count: number;
  rate: number;
  statuses: Record<string, number>;
  http: Distribution;
  sendToSignal: Distribution;
  signalToVerified: Distribution;
  /** signal → verified in steps: waiting for the workflow task, the task, waiting for the exchange, the exchange. */
  steps: { toTask: Distribution; task: Distribution; toExchange: Distribution; exchange: Distribution };
  /** The bar's measure: the callback leaving the person's browser → the code exchanged and the provider known. */
  sendToVerified: Distribution;
  signalToCompleted: Distribution;
  wall: Distribution;
  completed: number;
  ok: boolean;
}

export async function latency(stack: Stack, run: number): Promise<LatencyResult> {
  const prepared = await phase(`[latency] prepare ${options.latencyCount}`, (status) =>
    prepare(stack, 'latency', options.latencyCount, status),
  );
  const base = new URL(stack.callbackBase);
  const cpuBefore = cpuSnapshot(stack.pids);
  const measured = await phase(
    `[latency] ${prepared.length} callbacks at ${options.latencyRate}/s`,
    async (status) => {
      // Every wait on the result is already polling when its callback leaves.
      const results = prepared.map((p) =>
        stack.individual.waitForResult(p.workflowId).then((result) => ({ result, at: now() })),
      );
      const specs = prepared.map((p): RequestSpec => ({
        category: 'legitimate',
        method: 'GET',
        path: pathOf(p.callback),
      }));
      const sent = await openLoop(base, specs, options.latencyRate, options.maxInFlight, status);
      status.text = 'waiting for results';
      return { sent, results: await Promise.all(results) };
    },
  );
  recordCpu(run, 'latency: send until all results', cpuBefore, cpuSnapshot(stack.pids));
  const facts = await phase('[latency] verify histories', (status) =>
    workflowFacts(
      stack,
      prepared.map((p) => p.workflowId),
      status,
    ),
  );
  const answers = measured.sent.answers;
  /** The distribution of the time from `from` to `to` over the downgrades that have both. */
  const between = (from: (i: number) => number | undefined, to: (i: number) => number | undefined) =>
    distribution(
      prepared
        .map((_, i) => {
          const a = from(i);
          const b = to(i);
          return a === undefined || b === undefined ? NaN : b - a;
        })
        .filter(Number.isFinite),
    );
  const completed = measured.results.filter((r) => r.result.state === 'completed').length;
  const result: LatencyResult = {
    run,
    count: prepared.length,
    rate: options.latencyRate,
    statuses: countBy(answers, (a) => String(a.status)),
    http: distribution(answers.map((a) => a.answeredAt - a.sentAt)),
    sendToSignal: between(
      (i) => answers[i]!.sentAt,
      (i) => facts[i]!.signalAt,
    ),
    signalToVerified: between(
      (i) => facts[i]!.signalAt,
      (i) => facts[i]!.verifiedAt,
    ),
    steps: {
      toTask: between(
        (i) => facts[i]!.signalAt,
        (i) => facts[i]!.steps.taskStartedAt,
      ),
      task: between(
        (i) => facts[i]!.steps.taskStartedAt,
        (i) => facts[i]!.steps.taskCompletedAt,
      ),
      toExchange: between(
        (i) => facts[i]!.steps.exchangeScheduledAt,
        (i) => facts[i]!.steps.exchangeStartedAt,
      ),
      exchange: between(
        (i) => facts[i]!.steps.exchangeStartedAt,
        (i) => facts[i]!.verifiedAt,
      ),
    },
    sendToVerified: between(
      (i) => answers[i]!.sentAt,
      (i) => facts[i]!.verifiedAt,
    ),
    signalToCompleted: between(
      (i) => facts[i]!.signalAt,
      (i) => facts[i]!.closedAt,
    ),
    wall: between(
      (i) => answers[i]!.sentAt,
      (i) => measured.results[i]!.at,
    ),
    completed,
    ok:
      completed === prepared.length &&
      answers.every((a) => a.status === DELIVERED) &&
      facts.every((f) => f.signals === 1 && f.verifiedAt !== undefined),
  };
  log(`latency: ${JSON.stringify(result)}`);
  return result;
}
