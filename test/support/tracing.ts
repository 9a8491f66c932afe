import type { SpanContext } from "@opentelemetry/api";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import type { ReadableSpan } from "@opentelemetry/sdk-trace";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { HANG_GUARD_MS } from "./signals.js";

/**
 * A tracer provider that keeps finished spans in memory, with AsyncLocalStorage context and the
 * W3C trace-context + baggage propagator registered globally, as an application's SDK setup does.
 * Spans are exported synchronously when they end (SimpleSpanProcessor + in-memory exporter).
 */
export interface TestTracing {
  readonly provider: TracerProvider;
  readonly exporter: InMemorySpanExporter;
  /** Finished spans, in end order. */
  spans(): ReadableSpan[];
  /** Forgets the finished spans. */
  reset(): void;
}

let installed: TestTracing | undefined;

/** Installs the global test tracing once per test file (idempotent) and returns it. */
export function installTestTracing(): TestTracing {
  if (installed) return installed;
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  const contextManager = new AsyncLocalStorageContextManager();
  contextManager.enable();
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  installed = {
    provider,
    exporter,
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
  };
  return installed;
}

/** The one finished span with this name and kind; throws listing what there is otherwise. */
export function onlySpan(spans: readonly ReadableSpan[], name: string, kind: number): ReadableSpan {
  const found = spans.filter((s) => s.name === name && s.kind === kind);
  if (found.length !== 1) {
    const seen = spans.map((s) => `${s.name}/${s.kind}`).join(", ");
    throw new Error(`expected one span ${name} of kind ${kind}, found ${found.length} among [${seen}]`);
  }
  return found[0] as ReadableSpan;
}

/** True if `child` has `parent` as its parent span, in the same trace. */
export function isChildOf(child: ReadableSpan, parent: ReadableSpan | SpanContext): boolean {
  const p = "spanContext" in parent ? parent.spanContext() : parent;
  return child.parentSpanContext?.spanId === p.spanId && child.spanContext().traceId === p.traceId;
}

/** Waits until `predicate` holds, polling every 5 ms for at most `timeoutMs` (a hang guard, {@link HANG_GUARD_MS}). */
export async function waitFor(predicate: () => boolean, timeoutMs = HANG_GUARD_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
