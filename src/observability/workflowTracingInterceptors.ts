/**
 * Bundled into the workflow code when tracing is on (`tracingWorkflowInterceptorModule` in tracing.ts): Temporal's
 * OpenTelemetry workflow interceptors (RunWorkflow, HandleSignal, StartActivity, … spans), with W3C trace context
 * as the only propagator inside the sandbox.
 *
 * Those interceptors register a tracer provider in the sandbox when the first workflow builds them, and it takes
 * its propagators from `OTEL_PROPAGATORS`, which OpenTelemetry's browser build (the one webpack bundles) reads from
 * `globalThis`. Unset, that is trace context and baggage, and the baggage propagator would parse the `baggage` entry
 * of the trace header of every workflow start, signal, update and query, from any Temporal client: with
 * `@opentelemetry/core` 1.x without bound (GHSA-8988-4f7v-96qf; see docs/observability.md). Set here, when the bundle
 * loads, before any workflow runs. The process's own OTEL_PROPAGATORS does not reach the sandbox, so baggage never
 * travels through a workflow; trace context does, as before.
 */
(globalThis as { OTEL_PROPAGATORS?: string }).OTEL_PROPAGATORS = 'tracecontext';

export { interceptors } from '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors.js';
