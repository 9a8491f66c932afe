import type { Context, Span, SpanContext } from "@opentelemetry/api";
import { SpanKind, trace } from "@opentelemetry/api";

/** What an SDK span shows beyond the API's `Span`: `ReadableSpan` of the OpenTelemetry JS SDK. */
interface SdkSpanView {
  readonly kind?: unknown;
  /** SDK 2 and later. */
  readonly parentSpanContext?: SpanContext;
  /** SDK 1.x. */
  readonly parentSpanId?: unknown;
}

/**
 * The SERVER span of this request that HTTP instrumentation started before connect ran — with
 * `@opentelemetry/instrumentation-http` (which `getNodeAutoInstrumentations()` enables) an
 * HTTP/1.1 request has one, active in the handler's context — if it continued the same remote
 * parent as `extracted`: the active span of `active` is of kind SERVER, in the trace of
 * `extracted`'s remote span context, and its parent is that span context. The RPC span is then its
 * child rather than its sibling. Read through the SDK's span object (`kind`, `parentSpanContext`;
 * SDK 1.x `parentSpanId`), which the API's `Span` does not expose: undefined for a span that shows
 * none of them, and for anything else. Never throws.
 */
export function continuedServerSpan(active: Context, extracted: Context): Span | undefined {
  try {
    // the cheap checks first: most requests have no HTTP span, and validating ids runs regexes
    const span = trace.getSpan(active);
    if (span === undefined) return undefined;
    const view = span as unknown as SdkSpanView;
    if (view.kind !== SpanKind.SERVER) return undefined;
    const remote = trace.getSpanContext(extracted);
    if (remote?.isRemote !== true || !trace.isSpanContextValid(remote)) return undefined;
    const parentSpanId = view.parentSpanContext?.spanId ?? view.parentSpanId;
    const own = span.spanContext();
    return own.traceId === remote.traceId && parentSpanId === remote.spanId && own.spanId !== remote.spanId
      ? span
      : undefined;
  } catch {
    return undefined;
  }
}
