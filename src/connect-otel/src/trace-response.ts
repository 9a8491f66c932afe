import type { Span } from "@opentelemetry/api";
import { trace } from "@opentelemetry/api";

/** Response header of W3C Trace Context Level 2 that names the server's span to the caller. */
export const TRACE_RESPONSE_HEADER = "traceresponse";

/**
 * The `traceresponse` value of a span (W3C Trace Context Level 2, section "traceresponse Header"):
 * `00-<32 hex trace-id>-<16 hex span-id>-<2 hex flags>`, the same format as `traceparent`.
 * Undefined for an invalid span context (a tracer that failed).
 */
export function traceResponseValue(span: Span): string | undefined {
  try {
    const sc = span.spanContext();
    if (!trace.isSpanContextValid(sc)) return undefined;
    return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`;
  } catch {
    return undefined;
  }
}
