// 1. Sustained callbacks.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { StateSigner } from '../../src/contracts/stateToken.js';
import { reauthorizationCallback } from '../../src/workflows/definitions.js';
import { cpuSnapshot, recordCpu } from '../cpu.js';
import { closedLoop, openLoop, type RequestSpec } from '../httpLoad.js';
import {
  countBy,
  describeCounts,
  distribution,
  log,
  mapLimit,
  middle,
  now,
  serverRequests,
  sleep,
  sum,
  type Distribution,
} from '../support.js';
import { options, phase, PREPARE_CONCURRENCY, METRICS_SETTLE_MS, METRICS_LAG_MS } from './options.js';
import type { Stack } from './stack.js';
import { prepare, pathOf, DELIVERED } from './prepare.js';
import { waitUntilNoneRunning, workflowFacts, countsDelta } from './facts.js';

export interface YardstickResult {
  run: number;
  /** Whether each signal woke a workflow that a worker in this process then ran (see `signalYardstick`). */
  wakes: boolean;
  signals: number;
  workflows: number;
  perS: number;
  latency: Distribution;
}

/**
 * What this Temporal server gives a plain Temporal client, on the same machine at the same moment: signals
 * (encrypted payloads of the callback's size) from this process at `--concurrency`, without HTTP, state checks or
 * PostgreSQL. Two kinds:
 * - not waking: 256 workflows on a task queue no worker polls, so each signal costs the server one history write;
 * - waking: one signal to each of as many workflows (`signalSink`, bench/trivialWorkflows.ts) as a callback batch
 *   has, with a worker in this process running them: each signal also schedules a workflow task that the server
 *   dispatches and the worker completes with no command, what every callback's signal costs at least.
 */
export async function signalYardstick(stack: Stack, run: number, wakes: boolean): Promise<YardstickResult> {
  const signals = Math.min(options.count, 2000);
  const workflows = wakes ? signals : 256;
  const kind = wakes ? 'waking' : 'plain';
  const taskQueue = `${stack.taskQueue}-signal-${kind}`;
  return phase(`[yardstick] ${signals} ${kind} signals, ${options.concurrency} at a time`, async (status) => {
    const worker = wakes
      ? await Worker.create({
          connection: stack.nativeConnection,
          namespace: stack.namespace,
          taskQueue,
          workflowsPath: fileURLToPath(new URL('../trivialWorkflows.ts', import.meta.url)),
          dataConverter: stack.dataConverter,
        })
      : undefined;
    const measure = async () => {
      const ids = await mapLimit(
        Array.from({ length: workflows }, (_, i) => `bench-signal-${kind}-${run}-${i}`),
        PREPARE_CONCURRENCY,
        async (workflowId) => {
          await stack.client.workflow.start(wakes ? 'signalSink' : 'benchSignalSink', {
            workflowId,
            taskQueue,
            args: [],
          });
          return workflowId;
        },
      );
      // Each waking target's first workflow task done, so that a signal schedules a task of its own.
      if (wakes) {
        let ready = 0;
        await mapLimit(ids, PREPARE_CONCURRENCY, async (id) => {
          while ((await stack.client.workflow.getHandle(id).describe()).raw.pendingWorkflowTask)
            await sleep(50);
          status.text = `${(ready += 1)}/${ids.length} targets started`;
        });
      }
      const latencies: number[] = new Array(signals);
      let next = 0;
      const started = now();
      await Promise.all(
        Array.from({ length: options.concurrency }, async () => {
          while (next < signals) {
            const i = next++;
            const at = now();
            await stack.client.workflow.getHandle(ids[i % workflows]!).signal(reauthorizationCallback, {
              prompt: 1,
              nonce: StateSigner.newNonce(),
              codeRef: `sec_${randomBytes(18).toString('base64url')}`,
            });
            latencies[i] = now() - at;
            status.text = `signals ${i + 1}/${signals}`;
          }
        }),
      );
      const elapsedS = (now() - started) / 1000;
      await mapLimit(ids, PREPARE_CONCURRENCY, (id) =>
        stack.client.workflow.getHandle(id).terminate('benchmark: yardstick over'),
      );
      const result = {
        run,
        wakes,
        signals,
        workflows,
        perS: signals / elapsedS,
        latency: distribution(latencies),
      };
      log(`yardstick: ${JSON.stringify(result)}`);
      return result;
    };
    // runUntil stops the worker when the measurement ends, and fails the phase if the worker fails first.
    return worker ? worker.runUntil(measure) : measure();
  });
}

export interface SustainedResult {
  run: number;
  mode: string;
  count: number;
  statuses: Record<string, number>;
  sendWindowS: number;
  answerWindowS: number;
  acceptedPerS: number;
  perSecondMin: number;
  perSecondMedian: number;
  latency: Distribution;
  /** From sending the callback to the signal's event time in the history (the server persisted it). */
  toSignal: Distribution;
  maxInFlight: number;
  maxLagMs: number;
  capped: number;
  completed: number;
  lost: number;
  duplicated: number;
  notCompleted: number;
  allDoneS: number;
  completedPerS: number;
  /** The dev server's persistence requests per callback: during the send, and from the send until all ended. */
  persistencePerCallbackSend: number;
  persistencePerCallback: number;
  /** Each operation's requests per callback, during the send and from the send until all ended. */
  persistenceByOperationSend: Record<string, number>;
  /** The frontend's requests per callback during the send, by operation (signals, polls, completions, …). */
  frontendByOperationSend: Record<string, number>;
  persistenceByOperation: Record<string, number>;
  /** Per downgrade, after its signal: workflow tasks started, of them timed out, activities scheduled. */
  afterSignal: { workflowTasks: number; timedOut: number; activities: number };
  ok: boolean;
}

export async function sustained(
  stack: Stack,
  run: number,
  rate: number | 'max',
  used: URL[],
): Promise<SustainedResult> {
  const mode = rate === 'max' ? `max (${options.concurrency} conns)` : `${rate}/s open loop`;
  const label = rate === 'max' ? 'max' : `rate${rate}`;
  const prepared = await phase(`[${mode}] prepare ${options.count}`, (status) =>
    prepare(stack, label, options.count, status),
  );
  const base = new URL(stack.callbackBase);
  const specs = prepared.map((p): RequestSpec => ({
    category: 'legitimate',
    method: 'GET',
    path: pathOf(p.callback),
  }));
  used.push(...prepared.map((p) => p.callback));
  // The server's counters reach its metrics page a moment late: let the preparation's requests (its status
  // queries, say) arrive before the baseline, or they count as the send's.
  await sleep(METRICS_SETTLE_MS);
  const before = await serverRequests(stack.metricsUrl);
  const cpuBefore = cpuSnapshot(stack.pids);
  const sent = await phase(`[${mode}] send ${specs.length} callbacks`, (status) =>
    rate === 'max'
      ? closedLoop(base, specs, options.concurrency, status)
      : openLoop(base, specs, rate, options.maxInFlight, status),
  );
  const cpuSent = cpuSnapshot(stack.pids);
  // The same lag at the end: the send's requests reach the page up to a moment after its last answer, so the send's
  // counts also take in whatever the server did in that moment.
  await sleep(METRICS_LAG_MS);
  const sentCounts = await serverRequests(stack.metricsUrl);
  recordCpu(run, `${mode}: send`, cpuBefore, cpuSent);
  await phase(`[${mode}] wait until every downgrade ends`, (status) =>
    waitUntilNoneRunning(stack, prepared.since, status, mode),
  );
  recordCpu(run, `${mode}: until all ended`, cpuSent, cpuSnapshot(stack.pids));
  const ended = await serverRequests(stack.metricsUrl);
  const facts = await phase(`[${mode}] verify ${prepared.length} histories`, (status) =>
    workflowFacts(
      stack,
      prepared.map((p) => p.workflowId),
      status,
    ),
  );

  const answers = sent.answers;
  const firstSent = Math.min(...answers.map((a) => a.sentAt));
  const lastSent = Math.max(...answers.map((a) => a.sentAt));
  const lastAnswer = Math.max(...answers.map((a) => a.answeredAt));
  const accepted = answers.filter((a) => a.status === DELIVERED);
  const answerWindowS = (lastAnswer - firstSent) / 1000;
  // Accepted answers per whole second inside the window (the partial first and last seconds left out).
  const buckets = new Map<number, number>();
  for (const a of accepted) {
    const second = Math.floor((a.answeredAt - firstSent) / 1000);
    buckets.set(second, (buckets.get(second) ?? 0) + 1);
  }
  const fullSeconds = Math.floor(answerWindowS);
  const perSecond = Array.from({ length: Math.max(0, fullSeconds - 1) }, (_, i) => buckets.get(i + 1) ?? 0);
  const delivered = answers.map((a) => a.status === DELIVERED);
  const lost = facts.filter((f, i) => delivered[i] && f.signals === 0).length;
  const duplicated = facts.filter((f) => f.signals > 1).length;
  const completed = facts.filter((f) => f.status === 'COMPLETED' && f.state === 'completed').length;
  const lastClose = Math.max(...facts.map((f) => f.closedAt ?? NaN).filter(Number.isFinite));
  const perCallback = (counts: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(counts).map(([operation, count]) => [operation, count / prepared.length]),
    );
  const errors = answers.filter((a) => a.error).map((a) => a.error!);
  if (errors.length) log(`transport errors: ${describeCounts(countBy(errors, (e) => e))}`);
  const result: SustainedResult = {
    run,
    mode,
    count: prepared.length,
    statuses: countBy(answers, (a) => String(a.status)),
    sendWindowS: (lastSent - firstSent) / 1000,
    answerWindowS,
    acceptedPerS: accepted.length / answerWindowS,
    perSecondMin: perSecond.length ? Math.min(...perSecond) : NaN,
    perSecondMedian: perSecond.length ? middle(perSecond) : NaN,
    latency: distribution(answers.map((a) => a.answeredAt - a.sentAt)),
    toSignal: distribution(
      facts.map((f, i) => (f.signalAt ?? NaN) - answers[i]!.sentAt).filter(Number.isFinite),
    ),
    maxInFlight: sent.maxInFlight,
    maxLagMs: sent.maxLagMs,
    capped: sent.capped,
    completed,
    lost,
    duplicated,
    notCompleted: prepared.length - completed,
    allDoneS: (lastClose - firstSent) / 1000,
    completedPerS: completed / ((lastClose - firstSent) / 1000),
    persistencePerCallbackSend:
      sum(countsDelta(sentCounts.persistence, before.persistence)) / prepared.length,
    persistencePerCallback: sum(countsDelta(ended.persistence, before.persistence)) / prepared.length,
    persistenceByOperationSend: perCallback(countsDelta(sentCounts.persistence, before.persistence)),
    frontendByOperationSend: perCallback(countsDelta(sentCounts.frontend, before.frontend)),
    persistenceByOperation: perCallback(countsDelta(ended.persistence, before.persistence)),
    afterSignal: {
      workflowTasks: facts.reduce((n, f) => n + f.afterSignal.workflowTasks, 0) / facts.length,
      timedOut: facts.reduce((n, f) => n + f.afterSignal.timedOut, 0) / facts.length,
      activities: facts.reduce((n, f) => n + f.afterSignal.activities, 0) / facts.length,
    },
    ok:
      accepted.length === prepared.length && lost === 0 && duplicated === 0 && completed === prepared.length,
  };
  log(`${mode}: ${JSON.stringify(result)}`);
  return result;
}
