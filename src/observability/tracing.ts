/**
 * OpenTelemetry tracing through Temporal's interceptors: the client's StartWorkflow span travels in workflow
 * headers to RunWorkflow, StartActivity and RunActivity, and each Cronofy HTTP call is a span inside its activity
 * (src/cronofy/client.ts), so a downgrade is one trace. Spans are exported with OTLP over HTTP when
 * OTEL_EXPORTER_OTLP_ENDPOINT is set; otherwise no tracer provider is registered and every span is a no-op.
 *
 * Every interceptor is installed only with tracing on: the workflow ones run on every activation of every
 * workflow, so a worker without tracing bundles its workflows without them (bundleWorkflows in src/worker.ts).
 * Without the client's no trace context travels, which the workflows accept.
 *
 * The context travels by W3C trace context (`traceparent`, `tracestate`) only: OpenTelemetry's default adds the
 * W3C baggage propagator, whose parsing of a `baggage` header is unbounded in `@opentelemetry/core` 1.x
 * (GHSA-8988-4f7v-96qf, fixed in 2.8.0 only; docs/observability.md). The standard OTEL_PROPAGATORS chooses others
 * for the process (`tracecontext,baggage` opts in); the workflow sandbox keeps trace context only
 * (workflowTracingInterceptors.ts).
 */
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
import { modulePath } from '../modulePath.js';

/**
 * Bundled into the workflow code (see bundleWorkflows in src/worker.ts): RunWorkflow, StartActivity, … spans, with
 * trace context as the sandbox's only propagator.
 */
export const tracingWorkflowInterceptorModule = modulePath('./workflowTracingInterceptors', import.meta.url);

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
 * The process's tracer provider. Its propagators are those OTEL_PROPAGATORS names, parsed by the SDK itself
 * (`tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`; `none` for none); unset, W3C trace context alone rather
 * than the SDK's default of trace context and baggage (GHSA-8988-4f7v-96qf).
 */
class ServiceTracerProvider extends NodeTracerProvider {
  protected override _buildPropagatorFromEnv() {
    if (!process.env.OTEL_PROPAGATORS?.trim()) return this._getPropagator('tracecontext');
    return super._buildPropagatorFromEnv();
  }
}

/**
 * Registers the process-wide tracer provider when `otlpEndpoint` is set. The OTLP exporter reads the standard
 * variables itself (OTEL_EXPORTER_OTLP_ENDPOINT, …_TRACES_ENDPOINT, …_HEADERS); OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES name the service; OTEL_PROPAGATORS how the context travels (see ServiceTracerProvider).
 * Call once, before the client and workers are created.
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
  const provider = new ServiceTracerProvider({ resource, spanProcessors: [processor] });
  // Global: an AsyncLocalStorage context manager (so a Cronofy call's span is a child of its activity's) and the
  // propagator, W3C trace context unless OTEL_PROPAGATORS says otherwise.
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
