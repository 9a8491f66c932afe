import type { Attributes, Context, Tracer } from "@opentelemetry/api";
import { SpanKind } from "@opentelemetry/api";
import type { ReadableSpan, Sampler, Span, SpanProcessor } from "@opentelemetry/sdk-trace";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { HANG_GUARD_MS } from "./signals.js";
import { waitFor } from "./tracing.js";

/**
 * A tracer provider of its own for one test file, passed to traced clients and services as the
 * `tracerProvider` option, that keeps finished spans in memory and audits every span's life: the
 * attributes it had at start, how often `end()` was called on it (the SDK ignores a second `end()`
 * and only logs it, so counting finished spans alone cannot see a double end), and which spans
 * were started but never ended.
 *
 * Context manager and propagator still come from the global registration
 * ({@link installTestTracing} in `tracing.ts`), as in an application.
 */
export interface SpanRecorder {
  readonly provider: TracerProvider;
  /** A tracer of the provider, for parent spans that tests open around calls. */
  readonly tracer: Tracer;
  /**
   * Finished spans started since the last {@link reset}, in end order. A span of an earlier test
   * that ends late (a leak the earlier test already reported) does not spill into the next test.
   */
  spans(): ReadableSpan[];
  /** Attributes a span had when it started (what a sampler or `onStart` processor sees). */
  startAttributes(span: ReadableSpan): Attributes;
  /** How many times `end()` was called on a span. */
  endCalls(span: ReadableSpan): number;
  /** Names of spans started and not yet ended. */
  openSpans(): string[];
  /**
   * Waits (bounded by a hang guard, {@link HANG_GUARD_MS} by default) until every started span has
   * ended, then throws if any span had `end()` called more than once or was exported twice.
   */
  settle(timeoutMs?: number): Promise<void>;
  /** Forgets finished spans and the audit. */
  reset(): void;
}

interface Audit {
  readonly name: string;
  readonly startAttributes: Attributes;
  /** Calls of the span's `end()`. */
  endCalls: number;
  /** Calls of the processors' `onEnd` for the span. */
  onEndCalls: number;
}

/**
 * Creates a {@link SpanRecorder}; `sampler` defaults to the SDK default (parent-based always-on).
 * `processors` run after the recorder's own (auditing, then exporting to memory), so a processor
 * that throws there cannot hide a span from the audit.
 */
export function createSpanRecorder(options?: { sampler?: Sampler; processors?: SpanProcessor[] }): SpanRecorder {
  const exporter = new InMemorySpanExporter();
  const audits = new Map<string, Audit>();
  const auditor: SpanProcessor = {
    onStart(span: Span, _parent: Context) {
      const audit: Audit = { name: span.name, startAttributes: { ...span.attributes }, endCalls: 0, onEndCalls: 0 };
      audits.set(span.spanContext().spanId, audit);
      const end = span.end.bind(span);
      span.end = (endTime) => {
        audit.endCalls++;
        end(endTime);
      };
    },
    onEnd(span: ReadableSpan) {
      const audit = audits.get(span.spanContext().spanId);
      if (audit) audit.onEndCalls++;
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
  const provider = new TracerProvider({
    ...(options?.sampler ? { sampler: options.sampler } : {}),
    spanProcessors: [auditor, new SimpleSpanProcessor({ exporter }), ...(options?.processors ?? [])],
  });
  const auditOf = (span: ReadableSpan): Audit => {
    const audit = audits.get(span.spanContext().spanId);
    if (audit === undefined) throw new Error(`span ${span.name} was not started by this recorder`);
    return audit;
  };
  const openSpans = () => [...audits.values()].filter((a) => a.endCalls === 0).map((a) => a.name);
  return {
    provider,
    tracer: provider.getTracer("runtime-tests"),
    spans: () => exporter.getFinishedSpans().filter((s) => audits.has(s.spanContext().spanId)),
    startAttributes: (span) => auditOf(span).startAttributes,
    endCalls: (span) => auditOf(span).endCalls,
    openSpans,
    async settle(timeoutMs = HANG_GUARD_MS) {
      try {
        await waitFor(() => openSpans().length === 0, timeoutMs);
      } catch {
        throw new Error(`spans never ended: ${openSpans().join(", ")}`);
      }
      const twice = [...audits.values()]
        .filter((a) => a.endCalls > 1 || a.onEndCalls !== 1)
        .map((a) => `${a.name} (end ${a.endCalls}x, onEnd ${a.onEndCalls}x)`);
      if (twice.length > 0) throw new Error(`spans ended more than once: ${twice.join(", ")}`);
      const ids = exporter
        .getFinishedSpans()
        .filter((s) => audits.has(s.spanContext().spanId))
        .map((s) => s.spanContext().spanId);
      if (new Set(ids).size !== ids.length) throw new Error("a span was exported twice");
    },
    reset() {
      exporter.reset();
      audits.clear();
    },
  };
}

/**
 * The one finished span with this name and kind, waiting for it (bounded by a hang guard,
 * {@link HANG_GUARD_MS} by default): a server span can end after the client call returned.
 */
export async function spanOf(
  recorder: SpanRecorder,
  name: string,
  kind: number,
  timeoutMs = HANG_GUARD_MS,
): Promise<ReadableSpan> {
  const find = () => recorder.spans().filter((s) => s.name === name && s.kind === kind);
  try {
    await waitFor(() => find().length > 0, timeoutMs);
  } catch {
    const seen = recorder
      .spans()
      .map((s) => `${s.name}/${s.kind}`)
      .join(", ");
    throw new Error(`no span ${name} of kind ${kind} ended within ${timeoutMs} ms; ended: [${seen}]`);
  }
  const found = find();
  if (found.length !== 1) throw new Error(`expected one span ${name} of kind ${kind}, found ${found.length}`);
  return found[0] as ReadableSpan;
}

/** The CLIENT and the SERVER span of one call of the method `name` (see {@link spanOf}). */
export async function callSpans(
  recorder: SpanRecorder,
  name: string,
): Promise<{ client: ReadableSpan; server: ReadableSpan }> {
  return {
    client: await spanOf(recorder, name, SpanKind.CLIENT),
    server: await spanOf(recorder, name, SpanKind.SERVER),
  };
}

/** Duration of a finished span in milliseconds. */
export function durationMs(span: ReadableSpan): number {
  return span.duration[0] * 1000 + span.duration[1] / 1e6;
}
