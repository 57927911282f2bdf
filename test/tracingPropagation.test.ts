/**
 * With tracing on, the trace context travels by W3C trace context alone: no propagator of the service reads a
 * `baggage` header, whose parsing in @opentelemetry/core 1.x has no bound (GHSA-8988-4f7v-96qf,
 * docs/observability.md). The process's propagator is checked as setupTracing registers it, then through the
 * interceptors' own extraction from Temporal headers; the workflow sandbox's by starting a run on a real Temporal
 * server with a trace header that carries a large `baggage`. Each check has its control: with the SDK's default
 * (OTEL_PROPAGATORS=tracecontext,baggage, or the SDK's own workflow interceptor module) the same baggage is read.
 * The tracer provider is once per process: this file is its own process.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { context, propagation, ROOT_CONTEXT, trace, type TextMapGetter } from '@opentelemetry/api';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  extractContextFromHeaders,
  TRACE_HEADER,
} from '@temporalio/interceptors-opentelemetry/lib/instrumentation.js';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import {
  discardWorkflowSpans,
  setupTracing,
  tracingWorkflowInterceptorModule,
  type Tracing,
} from '../src/observability/tracing.js';
import { startTemporalServer } from '../harness/temporalServer.js';
import type { sandboxPropagation } from './fixtures/propagationWorkflow.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
/** Large (20,000 entries), with malformed entries at its end: whatever parses it allocates for every entry. */
const BAGGAGE = `${Array.from({ length: 20_000 }, (_, i) => `key${i}=value${i}`).join(',')},=x,;;,novalue`;
/** No exporter call is made: no span is ended while this is the endpoint. */
const NOWHERE = 'http://127.0.0.1:9';

/** A getter that records every header the propagator asks for. */
function recordingGetter(asked: string[]): TextMapGetter<Record<string, string>> {
  return {
    keys: (carrier) => Object.keys(carrier),
    get: (carrier, key) => {
      asked.push(key);
      return carrier[key];
    },
  };
}

/** Sets up tracing as src/main.ts does, with OTEL_PROPAGATORS as given (undefined: unset). */
async function withTracing<T>(propagators: string | undefined, use: () => T | Promise<T>): Promise<T> {
  const saved = process.env.OTEL_PROPAGATORS;
  if (propagators === undefined) delete process.env.OTEL_PROPAGATORS;
  else process.env.OTEL_PROPAGATORS = propagators;
  let tracing: Tracing | undefined;
  try {
    tracing = setupTracing({ otlpEndpoint: NOWHERE });
    assert.equal(tracing.enabled, true);
    return await use();
  } finally {
    await tracing?.shutdown();
    // register() installs the three globals once; a later setupTracing in this process needs them cleared.
    trace.disable();
    context.disable();
    propagation.disable();
    if (saved === undefined) delete process.env.OTEL_PROPAGATORS;
    else process.env.OTEL_PROPAGATORS = saved;
  }
}

describe("the process's propagator", () => {
  test('by default it is W3C trace context alone: a baggage header is never read, traceparent is', async () => {
    await withTracing(undefined, () => {
      assert.deepEqual(propagation.fields(), ['traceparent', 'tracestate']);
      const asked: string[] = [];
      const extracted = propagation.extract(
        ROOT_CONTEXT,
        { traceparent: TRACEPARENT, baggage: BAGGAGE },
        recordingGetter(asked),
      );
      assert.equal(asked.includes('baggage'), false, `asked for ${asked.join(', ')}`);
      assert.equal(propagation.getBaggage(extracted), undefined);
      assert.equal(trace.getSpanContext(extracted)?.traceId, TRACE_ID);

      // As the activity interceptors extract the workflow's context from a Temporal header.
      const fromHeaders = extractContextFromHeaders({
        [TRACE_HEADER]: defaultPayloadConverter.toPayload({ traceparent: TRACEPARENT, baggage: BAGGAGE }),
      });
      assert.ok(fromHeaders);
      assert.equal(propagation.getBaggage(fromHeaders), undefined);
      assert.equal(trace.getSpanContext(fromHeaders)?.traceId, TRACE_ID);
    });
  });

  test('an empty OTEL_PROPAGATORS is as unset', async () => {
    await withTracing(' ', () => assert.deepEqual(propagation.fields(), ['traceparent', 'tracestate']));
  });

  test('OTEL_PROPAGATORS=tracecontext,baggage opts in, and then baggage is read (the control)', async () => {
    await withTracing('tracecontext,baggage', () => {
      assert.deepEqual(propagation.fields(), ['traceparent', 'tracestate', 'baggage']);
      const asked: string[] = [];
      const extracted = propagation.extract(
        ROOT_CONTEXT,
        { traceparent: TRACEPARENT, baggage: 'a=1,b=2' },
        recordingGetter(asked),
      );
      assert.ok(asked.includes('baggage'));
      assert.equal(propagation.getBaggage(extracted)?.getAllEntries().length, 2);
      assert.equal(trace.getSpanContext(extracted)?.traceId, TRACE_ID);
    });
  });

  test('OTEL_PROPAGATORS=none registers no propagator', async () => {
    await withTracing('none', () => assert.deepEqual(propagation.fields(), []));
  });
});

describe("the workflow sandbox's propagator", () => {
  let env: TestWorkflowEnvironment;
  const workflowsPath = fileURLToPath(new URL('./fixtures/propagationWorkflow.ts', import.meta.url));
  /** Every run starts with a trace header holding a traceparent and the large baggage. */
  const withTraceHeader: WorkflowClientInterceptor = {
    start: (input, next) =>
      next({
        ...input,
        headers: {
          ...input.headers,
          [TRACE_HEADER]: defaultPayloadConverter.toPayload({ traceparent: TRACEPARENT, baggage: BAGGAGE }),
        },
      }),
  };

  before(async () => {
    Runtime.install({ logger: new DefaultLogger('WARN') });
    env = await startTemporalServer({ client: { interceptors: { workflow: [withTraceHeader] } } });
  });
  after(() => env?.teardown());

  /** Runs the fixture twice on one worker (the second in the reused sandbox) with `interceptorModule` bundled. */
  async function runTwice(interceptorModule: string) {
    const taskQueue = `propagation-${randomUUID()}`;
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await bundleWorkflowCode({
        workflowsPath,
        workflowInterceptorModules: [interceptorModule],
        logger: new DefaultLogger('WARN'),
      }),
      sinks: { exporter: discardWorkflowSpans },
    });
    return worker.runUntil(async () => {
      const results = [];
      for (let run = 0; run < 2; run += 1) {
        results.push(
          await env.client.workflow.execute<typeof sandboxPropagation>('sandboxPropagation', {
            taskQueue,
            workflowId: `propagation-${randomUUID()}`,
          }),
        );
      }
      return results;
    });
  }

  test("the service's workflow interceptors extract the trace context and never the baggage", async () => {
    for (const result of await runTwice(tracingWorkflowInterceptorModule)) {
      assert.deepEqual(result, {
        fields: ['traceparent', 'tracestate'],
        traceId: TRACE_ID,
        baggageEntries: null,
      });
    }
  });

  test("the SDK's own workflow interceptors read the same baggage (the control)", async () => {
    const sdkModule = fileURLToPath(
      import.meta.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors.js'),
    );
    for (const result of await runTwice(sdkModule)) {
      assert.deepEqual(result.fields, ['traceparent', 'tracestate', 'baggage']);
      assert.equal(result.traceId, TRACE_ID);
      assert.equal(result.baggageEntries, 20_000);
    }
  });
});
