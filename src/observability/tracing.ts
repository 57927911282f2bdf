/**
 * OpenTelemetry tracing through Temporal's interceptors: the client's StartWorkflow span travels in workflow
 * headers to RunWorkflow, StartActivity and RunActivity, and each Cronofy HTTP call is a span inside its activity
 * (src/cronofy/client.ts), so a downgrade is one trace. Spans are exported with OTLP over HTTP when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise no tracer provider is registered and every span is a no-op.
 *
 * Every interceptor is installed only with tracing on: the workflow ones run on every activation of every
 * workflow, so a worker without tracing bundles its workflows without them (bundleWorkflows in src/worker.ts).
 * Without the client's no trace context travels, which the workflows accept.
 */
import { createRequire } from 'node:module';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { envDetectorSync, Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { ClientInterceptors } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetryWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { ActivityInterceptorsFactory, InjectedSink } from '@temporalio/worker';

const require = createRequire(import.meta.url);

/** Bundled into the workflow code (see bundleWorkflows in src/worker.ts): RunWorkflow, StartActivity, … spans. */
export const tracingWorkflowInterceptorModule =
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

export const DEFAULT_SERVICE_NAME = 'cronofy-downgrade';

/** The sink through which the workflow sandbox hands its spans to the worker. */
export type WorkflowSpanSink = InjectedSink<OpenTelemetryWorkflowExporter>;

export interface Tracing {
  /** True when spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT was set). */
  enabled: boolean;
  /** Give to the worker: workflow spans leave the sandbox through it. None when tracing is off. */
  workflowSpanSink?: WorkflowSpanSink;
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered and stops; call last at shutdown. */
  shutdown(): Promise<void>;
}

/** Workflow spans are dropped: tracing is off, or this is a replay. */
export const discardWorkflowSpans: WorkflowSpanSink = { export: { fn: () => undefined } };

/**
 * Registers the process-wide tracer provider when `otlpEndpoint` is set. The OTLP exporter reads the standard
 * variables itself (OTEL_EXPORTER_OTLP_ENDPOINT, …_TRACES_ENDPOINT, …_HEADERS); OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES name the service. Call once, before the client and workers are created.
 */
export function setupTracing(options: { otlpEndpoint?: string; serviceName?: string } = {}): Tracing {
  if (!options.otlpEndpoint) {
    return {
      enabled: false,
      forceFlush: async () => undefined,
      shutdown: async () => undefined,
    };
  }
  const resource = new Resource({
    ...Resource.default().attributes,
    'service.name': options.serviceName ?? DEFAULT_SERVICE_NAME,
    ...envDetectorSync.detect().attributes,
  });
  const processor: SpanProcessor = new BatchSpanProcessor(new OTLPTraceExporter());
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  // Global: an AsyncLocalStorage context manager (so a Cronofy call's span is a child of its activity's) and W3C
  // trace-context propagation.
  provider.register();
  return {
    enabled: true,
    workflowSpanSink: makeWorkflowExporter(processor, resource),
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}

/** On every Temporal client: StartWorkflow/SignalWorkflow spans, whose context travels in the headers. */
export function tracingClientInterceptors(): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}

/** On every worker: RunActivity spans, children of the workflow's StartActivity; logs carry trace ids. */
export function tracingActivityInterceptors(): ActivityInterceptorsFactory[] {
  return [
    (ctx) => ({
      inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
      outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
    }),
  ];
}
